package server

import (
	"io/fs"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestArchiveFileLinks: with the file:// archive on the data directory's
// filesystem, archived segments still held locally share their file with
// the archive object (a hard link, no copy), and with ?link=false none
// does; either way local retention deletes the local names and every
// record reads back from offset 0 through the archive, also after a
// restart.
func TestArchiveFileLinks(t *testing.T) {
	for _, tc := range []struct {
		name, query string
		linked      bool
	}{
		{name: "link", linked: true},
		{name: "copy", query: "?link=false"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			archiveDir := filepath.Join(root, "archive")
			node := tierNode{dir: filepath.Join(root, "data"), archive: "file://" + archiveDir + tc.query}
			s := node.start(t)
			createTiered(t, s)
			const n = 1000
			produceTiered(t, s, 0, n)
			waitArchived(t, s, 60*time.Second)
			objects, shared := 0, 0
			err := filepath.WalkDir(archiveDir, func(path string, d fs.DirEntry, err error) error {
				if err != nil || d.IsDir() || !strings.HasSuffix(path, ".log") {
					return err
				}
				objects++
				fi, err := d.Info()
				if err != nil {
					return err
				}
				if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Nlink > 1 {
					shared++
				}
				return nil
			})
			if err != nil || objects == 0 {
				t.Fatalf("archive objects: %d, %v", objects, err)
			}
			if tc.linked && shared == 0 {
				t.Errorf("none of %d archived objects shares its file with a local segment", objects)
			}
			if !tc.linked && shared != 0 {
				t.Errorf("%d of %d archived objects share their file with link=false", shared, objects)
			}
			checkTiered(t, s, n)
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s = node.start(t)
			checkTiered(t, s, n)
		})
	}
}
