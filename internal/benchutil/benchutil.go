// Package benchutil holds what the benchmarks of several packages share.
//
// On a shared machine the wall clock of a benchmark drifts with the load of
// other processes; the process's CPU time drifts far less, so benchmarks
// report both (as cpu-ns/record or records/cpu-s metrics).
package benchutil

import (
	"os"
	"strings"
)

// PeakRSS is the process's peak resident set as /proc says it ("123456
// kB"), or "unknown" (not Linux).
func PeakRSS() string {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return "unknown"
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}
