package archive

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/weirhq/weir/internal/vfs"
)

// Errors callers branch on.
var (
	// ErrNotFound is returned for a key that has no object.
	ErrNotFound = errors.New("archive: object not found")
	// ErrRange is returned by Get for an offset past the object's end.
	ErrRange = errors.New("archive: range not satisfiable")
	// ErrCorrupt marks data that fails its checksum or size: a damaged
	// segment object or manifest.
	ErrCorrupt = errors.New("archive: corrupt")
	// ErrOverlap is returned by Manifest.Add for a segment that overlaps
	// what the manifest holds.
	ErrOverlap = errors.New("archive: segment overlaps the archive")
	// ErrGap is returned by Manifest.Add for a segment that would leave
	// offsets missing that the log start offset does not account for.
	ErrGap = errors.New("archive: segment leaves a gap")
	// ErrBelowStart is returned for a segment wholly below the start offset.
	ErrBelowStart = errors.New("archive: segment below the start offset")
	// ErrSegmentNotFound is returned by ReadSegment for a base offset the
	// manifest does not list.
	ErrSegmentNotFound = errors.New("archive: segment not in the manifest")
)

// ObjectInfo describes one stored object.
type ObjectInfo struct {
	Key     string
	Size    int64
	ModTime time.Time
}

// Backend stores whole objects under slash-separated keys (see the package
// doc). Implementations are safe for concurrent use; concurrent Puts of one
// key leave one of them.
type Backend interface {
	// Put stores exactly size bytes read from r under key, replacing any
	// object there. The object becomes visible whole or not at all: an
	// error (from r, from ctx, a size mismatch, the store) leaves the old
	// object or none.
	Put(ctx context.Context, key string, r io.Reader, size int64) error
	// Get returns the bytes [off, off+n) of the object, fewer at its end;
	// n < 0 reads to the end. An off past the end gives ErrRange.
	Get(ctx context.Context, key string, off, n int64) (io.ReadCloser, error)
	// Stat describes the object or returns ErrNotFound.
	Stat(ctx context.Context, key string) (ObjectInfo, error)
	// List returns the objects whose keys start with prefix, sorted by key.
	List(ctx context.Context, prefix string) ([]ObjectInfo, error)
	// Delete removes the object; a missing object is not an error.
	Delete(ctx context.Context, key string) error
	// Close releases the backend's resources.
	Close() error
}

// Options configure Open. Zero values take the defaults noted.
type Options struct {
	// FS is the filesystem of file:// archives; default vfs.OS().
	FS vfs.FS
	// Logger receives uploads, trims and sweeps; default slog.Default().
	Logger *slog.Logger
	// Now returns the current time (upload times); default time.Now.
	Now func() time.Time
	// MaxAttempts bounds the tries of one S3 request (the SDK's retryer,
	// exponential backoff up to MaxBackoff). Default 3.
	MaxAttempts int
	// MaxBackoff caps the wait between S3 retries. Default 2s.
	MaxBackoff time.Duration
	// MaxManifestBytes refuses a manifest object larger than this when
	// reading it (about 1.2 million segments at the default 64 MiB).
	MaxManifestBytes int64
	// MaxTxnIndexBytes refuses a segment's transaction index larger than
	// this, on upload and on read (about 2.8 million aborted transactions at the
	// default 64 MiB, far more than a segment holds).
	MaxTxnIndexBytes int64
}

// Defaults returns o with every zero value replaced by its default.
func (o Options) Defaults() Options {
	if o.FS == nil {
		o.FS = vfs.OS()
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.MaxAttempts == 0 {
		o.MaxAttempts = 3
	}
	if o.MaxBackoff == 0 {
		o.MaxBackoff = 2 * time.Second
	}
	if o.MaxManifestBytes == 0 {
		o.MaxManifestBytes = 64 << 20
	}
	if o.MaxTxnIndexBytes == 0 {
		o.MaxTxnIndexBytes = 64 << 20
	}
	return o
}

// Validate reports options that cannot work.
func (o Options) Validate() error {
	if o.MaxAttempts < 1 {
		return fmt.Errorf("archive: MaxAttempts %d must be at least 1", o.MaxAttempts)
	}
	if o.MaxBackoff < 0 {
		return fmt.Errorf("archive: MaxBackoff %v is negative", o.MaxBackoff)
	}
	if o.MaxManifestBytes < manifestHeaderLen+manifestTrailerLen {
		return fmt.Errorf("archive: MaxManifestBytes %d too small", o.MaxManifestBytes)
	}
	if o.MaxTxnIndexBytes < 0 {
		return fmt.Errorf("archive: MaxTxnIndexBytes %d is negative", o.MaxTxnIndexBytes)
	}
	return nil
}

// Open returns the backend the URL names (file://DIR[?link=false] or
// s3://BUCKET/PREFIX),
// after a probe request that fails clearly on wrong credentials, a missing
// bucket or directory permissions, or an unreachable endpoint. env holds
// "KEY=VALUE" entries in the form of os.Environ; only S3 reads it.
func Open(ctx context.Context, rawURL string, env []string, opts Options) (Backend, error) {
	opts = opts.Defaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	switch {
	case strings.HasPrefix(rawURL, "file://"):
		dir, link, err := parseFileURL(strings.TrimPrefix(rawURL, "file://"))
		if err != nil {
			return nil, err
		}
		return openFile(ctx, dir, link, opts)
	case strings.HasPrefix(rawURL, "s3://"):
		cfg, err := ParseS3(rawURL, env)
		if err != nil {
			return nil, err
		}
		return openS3(ctx, cfg, opts)
	default:
		return nil, fmt.Errorf("archive: unsupported URL %q: want file://DIR or s3://BUCKET/PREFIX", rawURL)
	}
}

// checkKey enforces the key syntax both backends share: non-empty
// slash-separated elements, none "." or "..", and no final element starting
// with "." (the file backend's temporaries).
func checkKey(key string) error {
	if key == "" || len(key) > 1024 {
		return fmt.Errorf("archive: invalid key %q", key)
	}
	elems := strings.Split(key, "/")
	for _, e := range elems {
		if e == "" || e == "." || e == ".." || strings.ContainsAny(e, "\\\x00") {
			return fmt.Errorf("archive: invalid key %q", key)
		}
	}
	if strings.HasPrefix(elems[len(elems)-1], ".") {
		return fmt.Errorf("archive: invalid key %q: a name starting with '.' is reserved", key)
	}
	return nil
}

// exactReader passes through exactly size bytes of r: it turns an early
// EOF into io.ErrUnexpectedEOF, and Extra reports bytes beyond size.
type exactReader struct {
	r    io.Reader
	size int64
	n    int64
	eof  bool
}

func (e *exactReader) Read(p []byte) (int, error) {
	if e.n >= e.size {
		return 0, io.EOF
	}
	if rem := e.size - e.n; int64(len(p)) > rem {
		p = p[:rem]
	}
	n, err := e.r.Read(p)
	e.n += int64(n)
	if err == io.EOF {
		e.eof = true
		if e.n < e.size {
			return n, fmt.Errorf("archive: body ended after %d of %d bytes: %w", e.n, e.size, io.ErrUnexpectedEOF)
		}
		return n, io.EOF
	}
	return n, err
}

// check reports whether the whole body was read and nothing follows it.
func (e *exactReader) check() error {
	if e.n < e.size {
		return fmt.Errorf("archive: body ended after %d of %d bytes: %w", e.n, e.size, io.ErrUnexpectedEOF)
	}
	if e.eof {
		return nil
	}
	var one [1]byte
	for {
		n, err := e.r.Read(one[:])
		if n > 0 {
			return fmt.Errorf("archive: body longer than its size %d", e.size)
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}
