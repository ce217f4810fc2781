package stage

import (
	"os"
	"syscall"
	"unsafe"
)

// isTerminal reports whether f is a terminal (TCGETS succeeds on it).
func isTerminal(f *os.File) bool {
	var t syscall.Termios
	_, _, errno := syscall.Syscall(syscall.SYS_IOCTL, f.Fd(), syscall.TCGETS, uintptr(unsafe.Pointer(&t)))
	return errno == 0
}

// growPipe asks for a 1 MiB pipe buffer when f is a pipe: fewer context
// switches between stages (field notes: a little faster). Failure is harmless.
func growPipe(f *os.File) {
	const fSetPipeSz = 1031 // F_SETPIPE_SZ
	if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeNamedPipe != 0 {
		syscall.Syscall(syscall.SYS_FCNTL, f.Fd(), fSetPipeSz, 1<<20)
	}
}

func setNonblock(fd uintptr, on bool) error { return syscall.SetNonblock(int(fd), on) }

// readFD is one read(2) of a descriptor in non-blocking mode.
func readFD(fd uintptr, p []byte) (int, error) { return syscall.Read(int(fd), p) }
