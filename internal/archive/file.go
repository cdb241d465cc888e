package archive

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"io/fs"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/weirhq/weir/internal/vfs"
)

// fileBackend stores objects as files under a root directory of a vfs.FS.
type fileBackend struct {
	fs   vfs.FS
	root string
	seed maphash.Seed
	// link: store local files (sealed segments of the same filesystem) as
	// hard links rather than copies (link.go); file://DIR?link=false
	// turns it off.
	link bool
	// locks stripe Puts by key so that two Puts of one key do not share a
	// temporary file.
	locks [32]sync.Mutex
}

// chunk is the unit of file writes and of context checks between them.
const chunk = 1 << 20

// NewFileBackend returns a file backend rooted at dir of fsys, creating dir
// if needed, after a probe that writes and removes a temporary there.
func NewFileBackend(ctx context.Context, fsys vfs.FS, dir string) (Backend, error) {
	return openFile(ctx, dir, true, Options{FS: fsys}.Defaults())
}

func newFileBackend(fsys vfs.FS, dir string) *fileBackend {
	return &fileBackend{fs: fsys, root: filepath.Clean(dir), seed: maphash.MakeSeed(), link: true}
}

func openFile(ctx context.Context, dir string, link bool, opts Options) (*fileBackend, error) {
	if dir == "" {
		return nil, errors.New("archive: file:// URL names no directory")
	}
	b := newFileBackend(opts.FS, dir)
	b.link = link
	if err := vfs.MkdirAllDurable(b.fs, b.root, 0o755); err != nil {
		return nil, fmt.Errorf("archive: file://%s: %w", dir, err)
	}
	if fi, err := b.fs.Stat(b.root); err != nil {
		return nil, fmt.Errorf("archive: file://%s: %w", dir, err)
	} else if !fi.IsDir() {
		return nil, fmt.Errorf("archive: file://%s is not a directory", dir)
	}
	probe := filepath.Join(b.root, ".probe.part")
	if err := b.writeFile(ctx, probe, strings.NewReader("probe"), 5); err != nil {
		return nil, fmt.Errorf("archive: file://%s is not writable: %w", dir, err)
	}
	if err := b.fs.Remove(probe); err != nil {
		return nil, fmt.Errorf("archive: file://%s: %w", dir, err)
	}
	return b, nil
}

// lockFor is the stripe of Put's locks for key.
func (b *fileBackend) lockFor(key string) *sync.Mutex {
	return &b.locks[maphash.String(b.seed, key)%uint64(len(b.locks))]
}

func (b *fileBackend) path(key string) string {
	return filepath.Join(b.root, filepath.FromSlash(key))
}

// tempPath is the hidden temporary beside the object: fixed per key, so the
// Put after a crash truncates what the crashed one left.
func tempPath(p string) string {
	return filepath.Join(filepath.Dir(p), "."+filepath.Base(p)+".part")
}

func isTemp(name string) bool { return strings.HasPrefix(name, ".") }

func (b *fileBackend) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	if err := checkKey(key); err != nil {
		return err
	}
	if size < 0 {
		return fmt.Errorf("archive: put %s: negative size %d", key, size)
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
	if err := b.writeFile(ctx, tmp, r, size); err != nil {
		_ = b.fs.Remove(tmp)
		return fmt.Errorf("archive: put %s: %w", key, err)
	}
	if err := ctx.Err(); err != nil {
		_ = b.fs.Remove(tmp)
		return fmt.Errorf("archive: put %s: %w", key, err)
	}
	if err := b.fs.Rename(tmp, p); err != nil {
		_ = b.fs.Remove(tmp)
		return fmt.Errorf("archive: put %s: %w", key, err)
	}
	if err := b.fs.SyncDir(dir); err != nil {
		return fmt.Errorf("archive: put %s: %w", key, err)
	}
	return nil
}

// writeFile writes exactly size bytes of r to name and fsyncs it.
func (b *fileBackend) writeFile(ctx context.Context, name string, r io.Reader, size int64) error {
	f, err := b.fs.Create(name)
	if err != nil {
		return err
	}
	er := &exactReader{r: r, size: size}
	buf := make([]byte, min(size, chunk))
	var off int64
	for off < size {
		if err := ctx.Err(); err != nil {
			f.Close()
			return err
		}
		n, rerr := er.Read(buf)
		if n > 0 {
			if _, err := f.WriteAt(buf[:n], off); err != nil {
				f.Close()
				return err
			}
			off += int64(n)
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			f.Close()
			return rerr
		}
	}
	if err := er.check(); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func (b *fileBackend) Get(ctx context.Context, key string, off, n int64) (io.ReadCloser, error) {
	if err := checkKey(key); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if off < 0 {
		return nil, fmt.Errorf("archive: get %s: negative offset %d", key, off)
	}
	f, err := b.fs.Open(b.path(key))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("archive: get %s: %w", key, ErrNotFound)
		}
		return nil, fmt.Errorf("archive: get %s: %w", key, err)
	}
	size, err := f.Size()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("archive: get %s: %w", key, err)
	}
	if off > size || off == size && size > 0 {
		f.Close()
		return nil, fmt.Errorf("archive: get %s at %d of %d bytes: %w", key, off, size, ErrRange)
	}
	end := size
	if n >= 0 && off+n < size {
		end = off + n
	}
	return &fileReader{ctx: ctx, f: f, sr: io.NewSectionReader(f, off, end-off)}, nil
}

// fileReader reads a section of an open file, checking ctx on each Read.
type fileReader struct {
	ctx context.Context
	f   vfs.File
	sr  *io.SectionReader
}

func (r *fileReader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.sr.Read(p)
}

func (r *fileReader) Close() error { return r.f.Close() }

func (b *fileBackend) Stat(ctx context.Context, key string) (ObjectInfo, error) {
	if err := checkKey(key); err != nil {
		return ObjectInfo{}, err
	}
	if err := ctx.Err(); err != nil {
		return ObjectInfo{}, err
	}
	fi, err := b.fs.Stat(b.path(key))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return ObjectInfo{}, fmt.Errorf("archive: stat %s: %w", key, ErrNotFound)
		}
		return ObjectInfo{}, fmt.Errorf("archive: stat %s: %w", key, err)
	}
	if fi.IsDir() {
		return ObjectInfo{}, fmt.Errorf("archive: stat %s: %w", key, ErrNotFound)
	}
	return ObjectInfo{Key: key, Size: fi.Size(), ModTime: fi.ModTime()}, nil
}

func (b *fileBackend) List(ctx context.Context, prefix string) ([]ObjectInfo, error) {
	// Walk from the deepest directory the prefix names whole.
	dir := ""
	if i := strings.LastIndexByte(prefix, '/'); i >= 0 {
		dir = prefix[:i]
	}
	var out []ObjectInfo
	var walk func(rel string) error
	walk = func(rel string) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		names, err := b.fs.List(b.path(rel))
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		for _, name := range names {
			key := name
			if rel != "" {
				key = rel + "/" + name
			}
			if !strings.HasPrefix(key, prefix) && !strings.HasPrefix(prefix, key+"/") {
				continue
			}
			fi, err := b.fs.Stat(b.path(key))
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					continue // removed meanwhile
				}
				return err
			}
			if fi.IsDir() {
				if err := walk(key); err != nil {
					return err
				}
				continue
			}
			if isTemp(name) || !strings.HasPrefix(key, prefix) {
				continue
			}
			out = append(out, ObjectInfo{Key: key, Size: fi.Size(), ModTime: fi.ModTime()})
		}
		return nil
	}
	if dir != "" && checkKey(dir) != nil {
		return nil, fmt.Errorf("archive: list %q: invalid prefix", prefix)
	}
	if err := walk(dir); err != nil {
		return nil, fmt.Errorf("archive: list %q: %w", prefix, err)
	}
	slices.SortFunc(out, func(a, b ObjectInfo) int { return strings.Compare(a.Key, b.Key) })
	return out, nil
}

func (b *fileBackend) Delete(ctx context.Context, key string) error {
	if err := checkKey(key); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	p := b.path(key)
	if err := b.fs.Remove(p); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("archive: delete %s: %w", key, err)
	}
	if err := b.fs.SyncDir(filepath.Dir(p)); err != nil {
		return fmt.Errorf("archive: delete %s: %w", key, err)
	}
	return nil
}

func (b *fileBackend) Close() error { return nil }

// String names the backend in logs.
func (b *fileBackend) String() string { return "file://" + path.Clean(filepath.ToSlash(b.root)) }
