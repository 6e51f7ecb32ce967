package config

import (
	"net"
	"strings"

	"github.com/apmtel/apmtel/internal/keys"
)

// Redis is how to reach the Redis that holds the queues and run state, and
// the key space apmtel uses in it.
type Redis struct {
	// RedisAddr is host:port of the Redis that holds the queues and run
	// state; with RedisSentinelMaster, a comma-separated list of Sentinels;
	// with RedisCluster, a comma-separated list of cluster nodes to start from.
	RedisAddr string
	// RedisSentinelMaster names the master the Sentinels at RedisAddr watch;
	// set, apmtel follows failovers.
	RedisSentinelMaster string
	// RedisSentinelPassword authenticates to the Sentinels themselves.
	RedisSentinelPassword string
	// RedisCluster connects to a Redis Cluster; apmtel's keys of one source
	// share a hash tag, so each of its scripts touches one slot.
	RedisCluster bool
	// RedisAddrSet records whether RedisAddr was given explicitly; standalone
	// mode starts an embedded Redis only when it was not.
	RedisAddrSet  bool
	RedisPassword string
	RedisDB       int
	// RedisTLS connects to Redis over TLS.
	RedisTLS bool
	// RedisCACert is a PEM file of the CA that signed Redis's certificate
	// (implies RedisTLS); empty uses the system roots.
	RedisCACert string
	// KeyPrefix namespaces apmtel's Redis keys.
	KeyPrefix string
}

// maxRedisDB bounds APMTEL_REDIS_DB; Redis's own default is 16 databases.
const maxRedisDB = 1023

// DefaultRedis is a local Redis, database 0.
func DefaultRedis() Redis {
	return Redis{RedisAddr: "127.0.0.1:6379", KeyPrefix: keys.DefaultPrefix}
}

// Validate checks the addresses, the topology and the key prefix.
func (r Redis) Validate() error {
	var p problems
	addrs := r.RedisAddrs()
	if len(addrs) == 0 {
		p.add("APMTEL_REDIS_ADDR", "empty")
	}
	for _, a := range strings.Split(r.RedisAddr, ",") {
		if strings.TrimSpace(a) == "" {
			if len(addrs) > 0 {
				p.add("APMTEL_REDIS_ADDR", "empty item in the comma-separated list")
			}
			continue
		}
		if _, port, err := net.SplitHostPort(strings.TrimSpace(a)); err != nil || port == "" {
			p.add("APMTEL_REDIS_ADDR", "%q is not host:port", strings.TrimSpace(a))
		}
	}
	switch {
	case r.RedisCluster && r.RedisSentinelMaster != "":
		p.add("APMTEL_REDIS_CLUSTER", "set either it or APMTEL_REDIS_SENTINEL_MASTER: choose one")
	case len(addrs) > 1 && !r.RedisCluster && r.RedisSentinelMaster == "":
		p.add("APMTEL_REDIS_ADDR", "%d addresses need APMTEL_REDIS_SENTINEL_MASTER (Sentinels) or APMTEL_REDIS_CLUSTER=true (cluster nodes)", len(addrs))
	case r.RedisCluster && r.RedisDB != 0:
		p.add("APMTEL_REDIS_DB", "a Redis Cluster has only database 0, got %d", r.RedisDB)
	}
	if r.RedisDB < 0 {
		p.add("APMTEL_REDIS_DB", "%d is negative", r.RedisDB)
	} else {
		p.bound("APMTEL_REDIS_DB", int64(r.RedisDB), 0, maxRedisDB)
	}
	if strings.ContainsAny(r.KeyPrefix, "{} ") || r.KeyPrefix == "" {
		p.add("APMTEL_KEY_PREFIX", "%q must be non-empty without braces or spaces", r.KeyPrefix)
	}
	return p.err()
}

// RedisAddrs returns the addresses of APMTEL_REDIS_ADDR.
func (r Redis) RedisAddrs() []string {
	var out []string
	for _, a := range strings.Split(r.RedisAddr, ",") {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	return out
}
