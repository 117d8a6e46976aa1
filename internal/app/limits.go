package app

import (
	"fmt"
	"syscall"
)

// fdReserve is the descriptors a process keeps beyond its listeners' caps: its PostgreSQL pool,
// Redis, Kafka and provider connections, files and the listeners themselves.
const fdReserve = 1024

// raiseFileLimit lifts the soft limit on open files to the hard limit (Go does so at start on
// Linux too; this keeps it explicit and reports the result) and returns it.
func raiseFileLimit() (uint64, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, fmt.Errorf("read the open-file limit: %w", err)
	}
	if lim.Cur < lim.Max {
		lim.Cur = lim.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			return 0, fmt.Errorf("raise the open-file limit to %d: %w", lim.Max, err)
		}
	}
	return lim.Cur, nil
}

// checkFileLimit refuses a connection cap the process's open-file limit cannot honour with
// fdReserve to spare: a listener allowed to take every descriptor would starve the process's
// own connections to PostgreSQL, Redis and Kafka.
func checkFileLimit(setting string, maxConns int) error {
	limit, err := raiseFileLimit()
	if err != nil {
		return err
	}
	if uint64(maxConns)+fdReserve > limit {
		return fmt.Errorf("%s=%d: with %d descriptors kept for the process's own connections, the open-file limit of %d allows at most %d",
			setting, maxConns, fdReserve, limit, max(0, int(limit)-fdReserve))
	}
	return nil
}
