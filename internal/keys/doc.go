// Package keys builds every Redis key apmtel reads or writes, so that the
// layout of the data in Redis can be read in one file and changed in one place.
//
// asynq's own keys ("asynq:{queue}:…") belong to asynq; apmtel writes none
// of them, and the three it reads to find orphaned active entries are named
// in asynq.go (AsynqQueue). apmtel's keys all start with a configurable prefix (default
// "apmtel") so that several deployments can share one Redis database.
// Run ids and task names are restricted (see ValidRunID) so that no key ever
// contains "{" or "}", which Redis Cluster would read as a hash tag.
package keys
