package app

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"

	"github.com/logicspike/comms/internal/platform/metrics"
)

// Version and Commit are stamped at build time (make build, the Dockerfile):
//
//	go build -ldflags "-X github.com/logicspike/comms/internal/app.Version=v1.4.0 -X github.com/logicspike/comms/internal/app.Commit=abc1234"
//
// Unstamped, Commit falls back to the VCS revision Go recorded in the binary.
var (
	Version = "dev"
	Commit  = ""
)

// VersionLine is what every binary's --version prints.
func VersionLine(binary string) string {
	return fmt.Sprintf("%s %s (commit %s)", binary, Version, commit())
}

// RecordBuildInfo sets comms_build_info for binary.
func RecordBuildInfo(binary string) {
	metrics.BuildInfo.WithLabelValues(binary, Version, commit(), runtime.Version()).Set(1)
}

// commit is the stamped commit, else the VCS revision Go recorded, else "unknown".
func commit() string {
	commit := Commit
	if commit == "" {
		if info, ok := debug.ReadBuildInfo(); ok {
			for _, s := range info.Settings {
				if s.Key == "vcs.revision" {
					commit = s.Value
				}
			}
		}
	}
	if commit == "" {
		commit = "unknown"
	}
	return commit
}

// AskedForVersion reports whether args (a binary's arguments) ask for its version or help, and
// answers on out: neither needs any configuration, so both work before the environment is read.
func AskedForVersion(binary string, args []string, out io.Writer) bool {
	if len(args) != 1 {
		return false
	}
	switch args[0] {
	case "--version", "-version", "version":
		fmt.Fprintln(out, VersionLine(binary))
		return true
	case "--help", "-help", "-h", "help":
		fmt.Fprintf(out, "%s: configured from the environment (COMMS_*; see docs/operations.md); it takes no arguments but --version.\n", binary)
		return true
	}
	return false
}
