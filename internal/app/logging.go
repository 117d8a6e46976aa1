package app

import (
	"context"
	"fmt"
	"log"
	"log/slog"

	"github.com/redis/go-redis/v9"
)

// The libraries' own log lines (kafka-go's errors, go-redis's, net/http's server errors such as
// a recovered panic or a failed accept) go through the binary's slog logger, as warnings with a
// component attribute, so that they are JSON like every other line and carry the service name.

// RouteLibraryLogs points go-redis's process-wide logger at log. kafka-go's error logger is set
// through queue.Settings.Log, and each http.Server's through httpErrorLog.
func RouteLibraryLogs(log *slog.Logger) {
	redis.SetLogger(redisLogger{log.With("component", "redis")})
}

type redisLogger struct{ log *slog.Logger }

func (l redisLogger) Printf(ctx context.Context, format string, v ...any) {
	l.log.WarnContext(ctx, fmt.Sprintf(format, v...))
}

// httpErrorLog is an http.Server's ErrorLog writing to log.
func httpErrorLog(l *slog.Logger) *log.Logger {
	return slog.NewLogLogger(l.With("component", "http").Handler(), slog.LevelWarn)
}
