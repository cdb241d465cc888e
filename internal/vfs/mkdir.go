package vfs

import (
	"os"
	"path/filepath"
)

// MkdirAllDurable creates dir and any missing parents like MkdirAll, then
// makes the new directory entries durable by syncing the parent of every
// directory it created (up to and including the deepest one that already
// existed). An existing dir is left as it is.
func MkdirAllDurable(fs FS, dir string, perm os.FileMode) error {
	dir = filepath.Clean(dir)
	if _, err := fs.Stat(dir); err == nil {
		return nil
	}
	var created []string
	for d := dir; ; {
		if _, err := fs.Stat(d); err == nil {
			break
		}
		created = append(created, d)
		parent := filepath.Dir(d)
		if parent == d {
			break
		}
		d = parent
	}
	if err := fs.MkdirAll(dir, perm); err != nil {
		return err
	}
	for _, d := range created {
		parent := filepath.Dir(d)
		if parent == d {
			continue
		}
		if err := fs.SyncDir(parent); err != nil {
			return err
		}
	}
	return nil
}
