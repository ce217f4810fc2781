//go:build !linux

package stage

import (
	"errors"
	"os"
)

func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

func growPipe(*os.File) {}

// setNonblock is not done here: inputs go through an asyncReader.
func setNonblock(uintptr, bool) error { return errors.New("not supported") }

// readFD is not used here: inputs go through an asyncReader.
func readFD(uintptr, []byte) (int, error) { return 0, errors.New("not supported") }
