// Package earlysig catches SIGINT and SIGTERM from the first moments of a
// stage's process. Without it, a signal that comes while a stage is still
// starting (a pipeline stopped right after it started, or a stage slow to
// start on a loaded machine) kills it with Go's default action, exit 143,
// instead of asking for a graceful stop; the stage runtime (stage.Stopper)
// takes the signals caught here over when it starts.
//
// Why a package of its own: Go initialises, among the packages whose
// dependencies are ready, the one with the lexically smallest import path
// first. This one depends on the standard library only, and its path sorts
// before the libraries a stage links (expr-lang, klauspost, urfave,
// modernc.org), so it catches signals before their initialisation runs.
package earlysig

import (
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
)

var (
	early = notify()
	taken atomic.Bool
)

func notify() chan os.Signal {
	c := make(chan os.Signal, 2)
	signal.Notify(c, syscall.SIGINT, syscall.SIGTERM)
	return c
}

// Take returns the channel that has caught SIGINT and SIGTERM since the
// process started, once: later calls get nil, false.
func Take() (chan os.Signal, bool) {
	if taken.CompareAndSwap(false, true) {
		return early, true
	}
	return nil, false
}
