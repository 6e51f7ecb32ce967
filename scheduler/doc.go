// Package scheduler starts telemetry runs: on every schedule slot, at start
// when the newest snapshot is stale (Kibana's runSoon), and on demand.
//
// A scheduled run's id is derived from its slot, the run record is created
// with a create-if-absent script, and every job has a task id derived from
// (run, task), so any number of scheduler replicas produce one run per slot
// and one job per task.
package scheduler
