package archive

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/weirhq/weir/internal/vfs"
)

// Storing a sealed segment on a file:// archive of the same filesystem as
// the data directory needs no copy: the object can be a hard link to the
// segment's file (vfs.LinkFile). A sealed segment is never written again
// (internal/commitlog: appends go to the active segment only; recovery
// truncates only the last segment, and a segment is sealed only once the
// next one's entry is durable; DeleteRecords and retention remove whole
// files; the cleaner writes aside and renames over, and tiered topics
// cannot be compacted), so the link holds exactly the bytes the segment
// held when it was linked. The promise is the copy's: the object is
// complete (its size checked) and durable (the file fsynced, the entry's
// directory fsynced) before the manifest names it, its CRC-32C (computed
// by reading the file, from the page cache) is in the manifest and
// checked on every read, and a crash before the manifest leaves an orphan
// that the retry replaces or Sweep removes. What a link cannot do is
// survive the loss of the disk it shares with the log — neither can a
// copy on that disk; retention deleting the local segment only drops one
// of the file's two names. Across filesystems (EXDEV), without
// /proc/self/fd, or with file://DIR?link=false, the object is copied.

// LocalFile is implemented by a reader of a whole local file (a sealed
// segment: commitlog.SegmentReader) that a file:// archive on the same
// filesystem may link instead of copying. The file must never change.
type LocalFile interface {
	// LocalFile returns the open file the reader reads, or nil.
	LocalFile() vfs.File
}

// fileLinker is a backend that can store a local file by linking it.
type fileLinker interface {
	putLinked(ctx context.Context, key string, f vfs.File, size int64) error
}

// parseFileURL splits the part of a file:// URL after the scheme into the
// directory and its options: link=true|false (default true).
func parseFileURL(rest string) (dir string, link bool, err error) {
	dir, query, _ := strings.Cut(rest, "?")
	link = true
	if query == "" {
		return dir, link, nil
	}
	q, err := url.ParseQuery(query)
	if err != nil {
		return "", false, fmt.Errorf("archive: file://%s: %w", rest, err)
	}
	for k, v := range q {
		if k != "link" || len(v) != 1 {
			return "", false, fmt.Errorf("archive: file://%s: unknown option %q (want link=true|false)", rest, k)
		}
		if link, err = strconv.ParseBool(v[0]); err != nil {
			return "", false, fmt.Errorf("archive: file://%s: link=%q: want true or false", rest, v[0])
		}
	}
	return dir, link, nil
}

// putLinked stores f, size bytes, under key as a hard link: linked to the
// key's temporary, the file fsynced, renamed over the object, the
// directory fsynced. An error leaves no temporary; the caller may copy
// instead.
func (b *fileBackend) putLinked(ctx context.Context, key string, f vfs.File, size int64) error {
	if !b.link {
		return fmt.Errorf("archive: put %s: linking disabled: %w", key, errors.ErrUnsupported)
	}
	if err := checkKey(key); err != nil {
		return err
	}
	if n, err := f.Size(); err != nil || n != size {
		return fmt.Errorf("archive: put %s: file holds %d bytes, want %d: %v", key, n, size, err)
	}
	mu := b.lockFor(key)
	mu.Lock()
	defer mu.Unlock()
	p := b.path(key)
	dir := filepath.Dir(p)
	if err := vfs.MkdirAllDurable(b.fs, dir, 0o755); err != nil {
		return fmt.Errorf("archive: put %s: %w", key, err)
	}
	tmp := tempPath(p)
	if err := b.fs.Remove(tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("archive: put %s: %w", key, err)
	}
	if err := vfs.LinkFile(b.fs, f, tmp); err != nil {
		return fmt.Errorf("archive: put %s: %w", key, err)
	}
	fail := func(err error) error {
		_ = b.fs.Remove(tmp)
		return fmt.Errorf("archive: put %s: %w", key, err)
	}
	// Sealed segments are synced already (the log syncs at roll); this
	// costs little and keeps the promise whatever the source.
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := ctx.Err(); err != nil {
		return fail(err)
	}
	if err := b.fs.Rename(tmp, p); err != nil {
		return fail(err)
	}
	// Renaming a name over another name of the same file (a retry after a
	// crash between link and manifest) changes nothing and leaves both.
	if err := b.fs.Remove(tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("archive: put %s: %w", key, err)
	}
	if err := b.fs.SyncDir(dir); err != nil {
		return fmt.Errorf("archive: put %s: %w", key, err)
	}
	return nil
}

// checksumFile returns the CRC-32C of the first size bytes of f.
func checksumFile(ctx context.Context, f io.ReaderAt, size int64) (uint32, error) {
	h := crc32.New(castagnoli)
	buf := make([]byte, min(size, chunk))
	for off := int64(0); off < size; {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		n, err := f.ReadAt(buf[:min(int64(len(buf)), size-off)], off)
		h.Write(buf[:n])
		off += int64(n)
		if err == io.EOF && off < size {
			return 0, fmt.Errorf("file ended after %d of %d bytes: %w", off, size, io.ErrUnexpectedEOF)
		}
		if err != nil && err != io.EOF {
			return 0, err
		}
	}
	return h.Sum32(), nil
}
