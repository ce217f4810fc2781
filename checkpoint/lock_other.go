//go:build !unix

package checkpoint

import (
	"errors"
	"os"
)

var errLocked = errors.New("locked")

// flock does nothing where flock(2) is missing: two runs on one checkpoint
// are not detected there.
func flock(*os.File) error { return nil }
