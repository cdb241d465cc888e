package archive

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestParseS3(t *testing.T) {
	env := []string{"AWS_ENDPOINT_URL=http://other:1", "AWS_ENDPOINT_URL_S3=http://127.0.0.1:9000",
		"AWS_ACCESS_KEY_ID=id", "AWS_SECRET_ACCESS_KEY=secret", "AWS_DEFAULT_REGION=eu-west-1", "UNRELATED"}
	cfg, err := ParseS3("s3://my-bucket/weir/prod/", env)
	if err != nil {
		t.Fatal(err)
	}
	want := S3Config{Bucket: "my-bucket", Prefix: "weir/prod", Endpoint: "http://127.0.0.1:9000", Region: "eu-west-1",
		AccessKeyID: "id", SecretAccessKey: "secret", PathStyle: true}
	if cfg != want {
		t.Fatalf("got %+v\nwant %+v", cfg, want)
	}
	if strings.Contains(cfg.String(), "secret") {
		t.Fatalf("String shows the secret: %s", cfg)
	}
	cfg, err = ParseS3("s3://bucket", []string{"AWS_ACCESS_KEY_ID=a", "AWS_SECRET_ACCESS_KEY=b", "AWS_REGION=ap-south-1"})
	if err != nil || cfg.Prefix != "" || cfg.Region != "ap-south-1" || cfg.PathStyle || cfg.Endpoint != "" {
		t.Fatalf("%+v %v", cfg, err)
	}
	for _, c := range []struct{ url, env, want string }{
		{"s3://bucket/p", "AWS_ACCESS_KEY_ID=a", "AWS_SECRET_ACCESS_KEY"},
		{"s3://B/p", "", "invalid bucket"},
		{"s3://bucket/a/../b", "", "invalid prefix"},
		{"s3://bucket/p?x=1", "", "want s3://"},
		{"s3://bucket/p", "AWS_ENDPOINT_URL_S3=ftp://x AWS_ACCESS_KEY_ID=a AWS_SECRET_ACCESS_KEY=b", "endpoint"},
	} {
		if _, err := ParseS3(c.url, strings.Fields(c.env)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ParseS3(%q, %q) = %v, want an error about %q", c.url, c.env, err, c.want)
		}
	}
	if _, err := Open(context.Background(), "gs://x", nil, Options{}); err == nil {
		t.Fatal("unsupported scheme accepted")
	}
}

// TestS3OpenErrors: a misconfigured archive fails at Open, saying why.
func TestS3OpenErrors(t *testing.T) {
	m := startMinio(t)
	for _, c := range []struct {
		name, url string
		env       []string
		want      string
	}{
		{"wrong secret", m.url("p"), m.env(minioUser, "not-the-secret"), "access denied"},
		{"unknown user", m.url("p"), m.env("nobody", minioSecret), "access denied"},
		{"missing bucket", "s3://no-such-bucket/p", m.env(minioUser, minioSecret), "does not exist"},
		{"unreachable", m.url("p"), []string{"AWS_ENDPOINT_URL_S3=http://" + freePort(t),
			"AWS_ACCESS_KEY_ID=" + minioUser, "AWS_SECRET_ACCESS_KEY=" + minioSecret}, "cannot reach"},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			start := time.Now()
			be, err := Open(ctx, c.url, c.env, Options{MaxAttempts: 2, MaxBackoff: 100 * time.Millisecond})
			if err == nil {
				be.Close()
				t.Fatal("Open succeeded")
			}
			t.Logf("Open: %v", err)
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %q does not say %q", err, c.want)
			}
			if d := time.Since(start); d > 15*time.Second {
				t.Fatalf("Open took %v to fail", d)
			}
		})
	}
}

// TestS3ServerRestart: with the server killed every operation fails with
// an error within its context's bound; after a restart on the same data
// directory they succeed and the archive is intact.
func TestS3ServerRestart(t *testing.T) {
	m := startMinio(t)
	be, err := Open(ctxT(t), m.url("restart"), m.env(minioUser, minioSecret),
		Options{MaxAttempts: 2, MaxBackoff: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	a := newArchive(t, be)
	ctx := ctxT(t)
	if err := upload(ctx, a, tp0, 0, 9, 0); err != nil {
		t.Fatal(err)
	}
	m.stop()
	ops := map[string]func(ctx context.Context) error{
		"put": func(ctx context.Context) error { return be.Put(ctx, "k", strings.NewReader("x"), 1) },
		"get": func(ctx context.Context) error {
			_, err := be.Get(ctx, SegmentKey(tp0, 0, 9), 0, -1)
			return err
		},
		"stat":     func(ctx context.Context) error { _, err := be.Stat(ctx, "k"); return err },
		"list":     func(ctx context.Context) error { _, err := be.List(ctx, ""); return err },
		"delete":   func(ctx context.Context) error { return be.Delete(ctx, "k") },
		"upload":   func(ctx context.Context) error { return upload(ctx, a, tp0, 10, 19, 0) },
		"manifest": func(ctx context.Context) error { _, err := a.Manifest(ctx, tp0); return err },
		"read": func(ctx context.Context) error {
			_, _, err := newArchive(t, be).ReadSegmentBytes(ctx, tp0, 0)
			return err
		},
	}
	for name, op := range ops {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		start := time.Now()
		err := op(ctx)
		cancel()
		if err == nil {
			t.Fatalf("%s with the server down succeeded", name)
		}
		if d := time.Since(start); d > 9*time.Second {
			t.Fatalf("%s with the server down took %v (%v)", name, d, err)
		}
	}
	// A call bounded by a short context returns at its deadline even while
	// the SDK would retry.
	short, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	start := time.Now()
	_, err = be.List(short, "")
	cancel()
	if err == nil || time.Since(start) > 5*time.Second {
		t.Fatalf("list under a 50ms context: %v after %v", err, time.Since(start))
	}
	m.start()
	if err := upload(ctx, a, tp0, 10, 19, 0); err != nil {
		t.Fatalf("upload after restart: %v\n%s", err, m.log())
	}
	for name, op := range ops {
		if name == "upload" {
			continue
		}
		if err := op(ctx); err != nil && !errors.Is(err, ErrNotFound) {
			t.Fatalf("%s after restart: %v", name, err)
		}
	}
	b := newArchive(t, be)
	if got := ranges(mustManifest(t, b, tp0)); got != "start 0: 0-9 10-19" {
		t.Fatalf("manifest after restart: %s", got)
	}
	checkRead(t, b, tp0, 0)
	checkRead(t, b, tp0, 10)
}

// TestS3PrefixIsolation: two prefixes of one bucket do not see each other.
func TestS3PrefixIsolation(t *testing.T) {
	m := startMinio(t)
	one, err := Open(ctxT(t), m.url("one"), m.env(minioUser, minioSecret), Options{})
	if err != nil {
		t.Fatal(err)
	}
	two, err := Open(ctxT(t), m.url("one-two"), m.env(minioUser, minioSecret), Options{})
	if err != nil {
		t.Fatal(err)
	}
	put(t, one, "a", []byte("1"))
	put(t, two, "a", []byte("2"))
	objs, err := one.List(ctxT(t), "")
	if err != nil || keys(objs) != "a" {
		t.Fatalf("list = %q, %v", keys(objs), err)
	}
	if got := getAll(t, two, "a"); !bytes.Equal(got, []byte("2")) {
		t.Fatalf("got %q", got)
	}
}
