package metrics

import (
	"slices"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
)

// Queues reads asynq's queue state at scrape time. Every value is one that
// asynq keeps in Redis, so they are the same whichever process is scraped:
// aggregate them with max, not sum.
type Queues struct {
	insp   *asynq.Inspector
	queues []string

	jobs, latency, processed, failed, up *prometheus.Desc
}

// NewQueues reports queues (always, with zeros before Redis knows them, so
// that alerts see a series instead of none).
func NewQueues(insp *asynq.Inspector, queues ...string) *Queues {
	q := []string{"queue"}
	return &Queues{insp: insp, queues: queues,
		jobs:      prometheus.NewDesc("apmtel_queue_jobs", "Jobs in the queue by state.", []string{"queue", "state"}, nil),
		latency:   prometheus.NewDesc("apmtel_queue_latency_seconds", "Age of the oldest pending job of the queue.", q, nil),
		processed: prometheus.NewDesc("apmtel_queue_processed_total", "Jobs the queue's handlers finished, successfully or not (asynq's all-time count in Redis).", q, nil),
		failed:    prometheus.NewDesc("apmtel_queue_failed_total", "Jobs whose handler returned an error (asynq's all-time count in Redis).", q, nil),
		up:        prometheus.NewDesc("apmtel_queue_scrape_ok", "1 when the queue state could be read from Redis at this scrape, else 0.", nil, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *Queues) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.jobs, c.latency, c.processed, c.failed, c.up} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *Queues) Collect(ch chan<- prometheus.Metric) {
	infos, err := c.read()
	ok := 1.0
	if err != nil {
		ok = 0
	}
	ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, ok)
	for _, info := range infos {
		for state, n := range map[string]int{"pending": info.Pending, "active": info.Active, "scheduled": info.Scheduled,
			"retry": info.Retry, "archived": info.Archived, "completed": info.Completed, "aggregating": info.Aggregating} {
			ch <- prometheus.MustNewConstMetric(c.jobs, prometheus.GaugeValue, float64(n), info.Queue, state)
		}
		ch <- prometheus.MustNewConstMetric(c.latency, prometheus.GaugeValue, info.Latency.Seconds(), info.Queue)
		ch <- prometheus.MustNewConstMetric(c.processed, prometheus.CounterValue, float64(info.ProcessedTotal), info.Queue)
		ch <- prometheus.MustNewConstMetric(c.failed, prometheus.CounterValue, float64(info.FailedTotal), info.Queue)
	}
}

// read returns every configured queue's info. GetQueueInfo's "queue not
// found" is asynq's internal error type, not ErrQueueNotFound, so queues
// Redis does not know yet are found by listing them first.
func (c *Queues) read() ([]*asynq.QueueInfo, error) {
	known, err := c.insp.Queues()
	if err != nil {
		return nil, err
	}
	out := make([]*asynq.QueueInfo, 0, len(c.queues))
	for _, q := range c.queues {
		info := &asynq.QueueInfo{Queue: q}
		if slices.Contains(known, q) {
			if info, err = c.insp.GetQueueInfo(q); err != nil {
				return nil, err
			}
		}
		out = append(out, info)
	}
	return out, nil
}
