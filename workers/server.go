package workers

import (
	"context"
	"errors"
	"math"
	"time"

	"github.com/hibiken/asynq"
	"github.com/rs/zerolog"

	"github.com/apmtel/apmtel/internal/config"
	"github.com/apmtel/apmtel/internal/logs"
	"github.com/apmtel/apmtel/jobs"
)

// ShutdownTimeout is how long in-flight jobs get after SIGTERM before their
// context is cancelled and they return to the queue. It stays below Docker's
// 10 s stop grace period.
const ShutdownTimeout = 8 * time.Second

// NewServer returns an asynq server configured from cfg.
func NewServer(cfg config.Config, redis asynq.RedisConnOpt, logger zerolog.Logger) *asynq.Server {
	l := logs.Named(logger, logs.Asynq)
	return asynq.NewServer(redis, asynq.Config{
		Concurrency:       cfg.Concurrency,
		Queues:            jobs.Queues(),
		TaskCheckInterval: cfg.PollInterval,
		ShutdownTimeout:   ShutdownTimeout,
		RetryDelayFunc:    RetryDelay,
		Logger:            logs.AsynqLogger{L: l},
		LogLevel:          asynq.WarnLevel,
		ErrorHandler: asynq.ErrorHandlerFunc(func(ctx context.Context, t *asynq.Task, err error) {
			if errors.Is(err, asynq.SkipRetry) {
				l.Error().Err(err).Str("job", t.Type()).Msg("job failed permanently; archived")
			}
		}),
	})
}

// RetryDelay is exponential backoff from 2 s, capped at 5 min.
func RetryDelay(n int, _ error, _ *asynq.Task) time.Duration {
	d := 2 * time.Second * time.Duration(math.Pow(2, float64(min(n, 10))))
	return min(d, 5*time.Minute)
}
