package metrics

import (
	"context"
	"slices"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/apmtel/apmtel/internal/orphans"
)

// scanTimeout bounds the orphan scan of one queue at scrape time.
const scanTimeout = 5 * time.Second

// Queues reads asynq's queue state at scrape time. Every value is one that
// asynq keeps in Redis, so they are the same whichever process is scraped:
// aggregate them with max, not sum.
//
// Orphaned entries of an active list (internal/orphans: no usable task hash,
// never moved by asynq) are not counted as active but as
// apmtel_queue_orphaned_jobs; while a queue holds one that asynq cannot read
// at all, its job counts come from the lists themselves and its latency and
// totals are left out of that scrape.
type Queues struct {
	insp   *asynq.Inspector
	rdb    redis.UniversalClient
	queues []string

	jobs, orphaned, latency, processed, failed, up *prometheus.Desc
}

// NewQueues reports queues (always, with zeros before Redis knows them, so
// that alerts see a series instead of none). rdb is the client the orphan
// scan uses; nil turns it off (asynq's counts as they are).
func NewQueues(insp *asynq.Inspector, rdb redis.UniversalClient, queues ...string) *Queues {
	q := []string{"queue"}
	return &Queues{insp: insp, rdb: rdb, queues: queues,
		jobs:      prometheus.NewDesc("apmtel_queue_jobs", "Jobs in the queue by state (active: without orphaned entries).", []string{"queue", "state"}, nil),
		orphaned:  prometheus.NewDesc("apmtel_queue_orphaned_jobs", "Entries of the queue's active list without a usable task hash, which no asynq process moves; workers remove them after 5 minutes without a lease.", q, nil),
		latency:   prometheus.NewDesc("apmtel_queue_latency_seconds", "Age of the oldest pending job of the queue.", q, nil),
		processed: prometheus.NewDesc("apmtel_queue_processed_total", "Jobs the queue's handlers finished, successfully or not (asynq's all-time count in Redis).", q, nil),
		failed:    prometheus.NewDesc("apmtel_queue_failed_total", "Jobs whose handler returned an error (asynq's all-time count in Redis).", q, nil),
		up:        prometheus.NewDesc("apmtel_queue_scrape_ok", "1 when the queue state could be read from Redis at this scrape, else 0.", nil, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *Queues) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.jobs, c.orphaned, c.latency, c.processed, c.failed, c.up} {
		ch <- d
	}
}

// queueState is what one scrape read of a queue.
type queueState struct {
	counts   map[string]int
	orphaned int
	// info is asynq's view; nil when asynq could not read the queue (then
	// counts came from the lists and there is no latency or total).
	info *asynq.QueueInfo
}

// Collect implements prometheus.Collector.
func (c *Queues) Collect(ch chan<- prometheus.Metric) {
	states, err := c.read()
	ok := 1.0
	if err != nil {
		ok = 0
	}
	ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, ok)
	for q, s := range states {
		for state, n := range s.counts {
			ch <- prometheus.MustNewConstMetric(c.jobs, prometheus.GaugeValue, float64(n), q, state)
		}
		if c.rdb != nil {
			ch <- prometheus.MustNewConstMetric(c.orphaned, prometheus.GaugeValue, float64(s.orphaned), q)
		}
		if s.info != nil {
			ch <- prometheus.MustNewConstMetric(c.latency, prometheus.GaugeValue, s.info.Latency.Seconds(), q)
			ch <- prometheus.MustNewConstMetric(c.processed, prometheus.CounterValue, float64(s.info.ProcessedTotal), q)
			ch <- prometheus.MustNewConstMetric(c.failed, prometheus.CounterValue, float64(s.info.FailedTotal), q)
		}
	}
}

// read returns every configured queue's state. GetQueueInfo's "queue not
// found" is asynq's internal error type, not ErrQueueNotFound, so queues
// Redis does not know yet are found by listing them first.
func (c *Queues) read() (map[string]queueState, error) {
	known, err := c.insp.Queues()
	if err != nil {
		return nil, err
	}
	out := make(map[string]queueState, len(c.queues))
	for _, q := range c.queues {
		s := queueState{info: &asynq.QueueInfo{Queue: q}}
		if slices.Contains(known, q) {
			if s, err = c.readQueue(q); err != nil {
				return nil, err
			}
		}
		if s.info != nil {
			i := s.info
			s.counts = map[string]int{"pending": i.Pending, "active": i.Active, "scheduled": i.Scheduled,
				"retry": i.Retry, "archived": i.Archived, "completed": i.Completed, "aggregating": i.Aggregating}
		}
		s.counts["active"] = max(0, s.counts["active"]-s.orphaned)
		out[q] = s
	}
	return out, nil
}

func (c *Queues) readQueue(q string) (queueState, error) {
	var s queueState
	if c.rdb != nil {
		ctx, cancel := context.WithTimeout(context.Background(), scanTimeout)
		defer cancel()
		found, _, err := orphans.Scan(ctx, c.rdb, q)
		if err != nil {
			return s, err
		}
		s.orphaned = len(found)
	}
	info, err := c.insp.GetQueueInfo(q)
	if err == nil {
		s.info = info
		return s, nil
	}
	if s.orphaned == 0 {
		return s, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), scanTimeout)
	defer cancel()
	counts, cerr := orphans.Counts(ctx, c.rdb, q)
	if cerr != nil {
		return s, cerr
	}
	s.counts = map[string]int{"aggregating": 0}
	for k, v := range counts {
		s.counts[k] = int(v)
	}
	return s, nil
}
