package workers

import (
	"context"
	"errors"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/apmtel/apmtel/internal/config"
	"github.com/apmtel/apmtel/internal/logs"
	"github.com/apmtel/apmtel/jobs"
)

// NewServer returns an asynq server configured from cfg.
// It uses the process's Redis client rather than a pool of its own.
func NewServer(cfg config.Config, rdb redis.UniversalClient, logger zerolog.Logger) *asynq.Server {
	l := logs.Named(logger, logs.Asynq)
	return asynq.NewServerFromRedisClient(rdb, asynq.Config{
		Concurrency:       cfg.Concurrency,
		Queues:            jobs.Queues(),
		TaskCheckInterval: cfg.PollInterval,
		ShutdownTimeout:   cfg.Timing().ShutdownTimeout,
		RetryDelayFunc:    RetryDelay,
		// A job whose context was cancelled (apmtel cancel) is not a failure:
		// it must not show as an error rate in Asynqmon or the metrics.
		IsFailure: func(err error) bool { return err != nil && !errors.Is(err, context.Canceled) },
		Logger:    logs.AsynqLogger{L: l},
		LogLevel:  asynq.WarnLevel,
		ErrorHandler: asynq.ErrorHandlerFunc(func(ctx context.Context, t *asynq.Task, err error) {
			if errors.Is(err, asynq.SkipRetry) {
				l.Error().Err(err).Str("job", t.Type()).Msg("job failed permanently; archived")
			}
		}),
	})
}
