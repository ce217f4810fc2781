package checkpoint

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// IDFile holds a checkpoint directory's identity: random hex, made by the
// first stage that opens the directory. The source announces it in its
// stream (framing's Checkpoint frame), so the stages after it can tell that
// they share its checkpoint, wherever each mounts the directory.
const IDFile = "id"

// ID returns the identity of the checkpoint directory root, creating the
// directory and the identity if needed. Stages starting at once agree: the
// identity is linked into place, which fails if one is there already, and
// then that one is read.
func ID(root string) (string, error) {
	if err := os.MkdirAll(root, 0o755); err != nil {
		return "", fmt.Errorf("checkpoint: %w", err)
	}
	path := filepath.Join(root, IDFile)
	if id, err := readID(path); err == nil || !errors.Is(err, os.ErrNotExist) {
		return id, err
	}
	f, err := os.CreateTemp(root, tmpPrefix+IDFile+"-*")
	if err != nil {
		return "", fmt.Errorf("checkpoint: %w", err)
	}
	defer os.Remove(f.Name())
	b := make([]byte, 16)
	rand.Read(b)
	_, err = f.WriteString(hex.EncodeToString(b) + "\n")
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		if err = os.Link(f.Name(), path); errors.Is(err, os.ErrExist) {
			err = nil
		} else if err == nil {
			err = SyncDir(root)
		}
	}
	if err != nil {
		return "", fmt.Errorf("checkpoint: %w", err)
	}
	return readID(path)
}

func readID(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("checkpoint: %w", err)
	}
	id := strings.TrimSpace(string(b))
	if id == "" || len(id) > 256 {
		return "", fmt.Errorf("checkpoint: %s: %w: not a checkpoint id", path, ErrCorrupt)
	}
	return id, nil
}
