package cli

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/hibiken/asynq"

	"github.com/apmtel/apmtel/internal/run"
	"github.com/apmtel/apmtel/jobs"
)

// metricsHandler serves queue and run figures in the Prometheus text
// format, read from Redis on each scrape (asynq's own collector lives in a
// module built on go-redis v8, so this is a small one of our own).
func metricsHandler(insp *asynq.Inspector, st *run.Store) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
		defer cancel()
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		type metric struct{ name, help, typ string }
		written := map[string]bool{}
		emit := func(m metric, labels string, v float64) {
			if !written[m.name] {
				fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n", m.name, m.help, m.name, m.typ)
				written[m.name] = true
			}
			fmt.Fprintf(w, "%s%s %g\n", m.name, labels, v)
		}
		// GetQueueInfo's "queue not found" is asynq's internal error type, not
		// ErrQueueNotFound, so queues Redis does not know yet (a fresh install
		// before the first run) are found by listing them first; they report
		// zeros, so alerts see a series rather than none.
		known, err := insp.Queues()
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		for _, q := range []string{jobs.QueueCollect, jobs.QueueControl} {
			info := &asynq.QueueInfo{Queue: q}
			if slices.Contains(known, q) {
				info, err = insp.GetQueueInfo(q)
			}
			if err != nil {
				http.Error(w, err.Error(), http.StatusServiceUnavailable)
				return
			}
			l := fmt.Sprintf("{queue=%q}", q)
			for state, n := range map[string]int{"pending": info.Pending, "active": info.Active, "scheduled": info.Scheduled,
				"retry": info.Retry, "archived": info.Archived, "completed": info.Completed} {
				emit(metric{"apmtel_queue_jobs", "Jobs in the queue by state.", "gauge"}, fmt.Sprintf("{queue=%q,state=%q}", q, state), float64(n))
			}
			emit(metric{"apmtel_queue_latency_seconds", "Age of the oldest pending job.", "gauge"}, l, info.Latency.Seconds())
			emit(metric{"apmtel_queue_processed_today", "Jobs processed today (UTC).", "gauge"}, l, float64(info.Processed))
			emit(metric{"apmtel_queue_failed_today", "Jobs failed today (UTC).", "gauge"}, l, float64(info.Failed))
		}
		if id, at, err := st.Latest(ctx); err == nil {
			emit(metric{"apmtel_latest_snapshot_age_seconds", "Age of the newest finalized run.", "gauge"}, "", time.Since(at).Seconds())
			if r, err := st.Get(ctx, id); err == nil {
				rep := run.Report{}
				if r.Report != nil {
					rep = *r.Report
				}
				emit(metric{"apmtel_latest_run_tasks", "Tasks of the newest finalized run.", "gauge"}, "", float64(len(r.Tasks)))
				emit(metric{"apmtel_latest_run_failed_tasks", "Tasks without a result in the newest finalized run.", "gauge"}, "", float64(len(rep.Failed)))
				emit(metric{"apmtel_latest_run_unmapped_fields", "Payload fields of the newest run outside the schema.", "gauge"}, "", float64(len(rep.SchemaProblems)))
				uploaded := 0.0
				if r.Upload.State.Delivered() {
					uploaded = 1
				}
				emit(metric{"apmtel_latest_run_uploaded", "Whether the newest finalized run's payload was delivered.", "gauge"}, "", uploaded)
			}
		}
	})
}
