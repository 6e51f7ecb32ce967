// Package redisconn opens the one Redis client of an apmtel process: a
// single node, a Sentinel-watched master (failover followed) or a Redis
// Cluster, chosen by configuration. asynq's client, server and inspector,
// Asynqmon, the run store and the search limiter all share it, so a process
// has one connection pool, one TLS setup and one place where Redis errors
// are turned into a sentence naming the setting.
package redisconn

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/apmtel/apmtel/internal/boundedfile"
	"github.com/apmtel/apmtel/internal/config"
)

func init() {
	// go-redis logs every failed dial itself ("failed to dial after 5
	// attempts"); apmtel reports Redis errors once, naming the setting.
	redis.SetLogger(quiet{})
}

type quiet struct{}

func (quiet) Printf(context.Context, string, ...any) {}

// Kind names the topology.
func Kind(cfg config.Config) string {
	switch {
	case cfg.RedisCluster:
		return "cluster"
	case cfg.RedisSentinelMaster != "":
		return "sentinel"
	}
	return "single"
}

// TLS returns the TLS configuration for Redis, or nil without TLS.
func TLS(cfg config.Config) (*tls.Config, error) {
	if !cfg.RedisTLS && cfg.RedisCACert == "" {
		return nil, nil
	}
	t := &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.RedisCACert != "" {
		pem, err := boundedfile.Read(cfg.RedisCACert)
		if err != nil {
			return nil, &config.UsageError{Err: fmt.Errorf("APMTEL_REDIS_CA_CERT: %w", err)}
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, &config.UsageError{Err: fmt.Errorf("APMTEL_REDIS_CA_CERT: %s holds no PEM certificate", cfg.RedisCACert)}
		}
		t.RootCAs = pool
	}
	return t, nil
}

// New returns the process's Redis client; name labels its connections
// (CLIENT LIST shows it), so an operator sees which process holds which.
func New(cfg config.Config, name string) (redis.UniversalClient, error) {
	t, err := TLS(cfg)
	if err != nil {
		return nil, err
	}
	addrs := cfg.RedisAddrs()
	switch Kind(cfg) {
	case "cluster":
		return redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs, Password: cfg.RedisPassword, TLSConfig: t, ClientName: name}), nil
	case "sentinel":
		return redis.NewFailoverClient(&redis.FailoverOptions{MasterName: cfg.RedisSentinelMaster, SentinelAddrs: addrs,
			SentinelPassword: cfg.RedisSentinelPassword, Password: cfg.RedisPassword, DB: cfg.RedisDB, TLSConfig: t, ClientName: name}), nil
	}
	return redis.NewClient(&redis.Options{Addr: addrs[0], Password: cfg.RedisPassword, DB: cfg.RedisDB, TLSConfig: t, ClientName: name}), nil
}

// Ping checks that Redis answers, in one line naming APMTEL_REDIS_ADDR.
func Ping(ctx context.Context, rdb redis.UniversalClient, cfg config.Config) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("cannot reach Redis (%s) at %s (APMTEL_REDIS_ADDR): %v", Kind(cfg), cfg.RedisAddr, err)
	}
	return nil
}

// Shared hands an existing client to asynq APIs that only take a connection
// option (Asynqmon), so they open no pool of their own. Closing it through
// them closes the shared client, which the process does last anyway.
type Shared struct{ C redis.UniversalClient }

// MakeRedisClient implements asynq.RedisConnOpt.
func (s Shared) MakeRedisClient() any { return s.C }
