package archive

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
)

// S3Config is an s3:// archive's location and credentials, from the URL
// and the standard AWS environment variables (ParseS3).
type S3Config struct {
	Bucket string
	// Prefix is prepended (with a slash) to every key; may be empty.
	Prefix string
	// Endpoint is the service URL (http or https); empty means AWS.
	Endpoint string
	Region   string
	// AccessKeyID, SecretAccessKey and SessionToken are static credentials.
	AccessKeyID, SecretAccessKey, SessionToken string
	// PathStyle addresses bucket/key on the endpoint instead of a
	// bucket.endpoint host; set for a custom endpoint.
	PathStyle bool
}

// String describes the location without secrets.
func (c S3Config) String() string {
	s := "s3://" + c.Bucket
	if c.Prefix != "" {
		s += "/" + c.Prefix
	}
	if c.Endpoint != "" {
		s += " at " + c.Endpoint
	}
	return s
}

// envMap turns "KEY=VALUE" entries into a map; a later entry wins.
func envMap(env []string) map[string]string {
	m := make(map[string]string, len(env))
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	return m
}

// ParseS3 reads s3://BUCKET/PREFIX and the AWS variables in env ("KEY=VALUE"
// entries as os.Environ gives them): AWS_ENDPOINT_URL_S3 (else
// AWS_ENDPOINT_URL), AWS_REGION (else AWS_DEFAULT_REGION, else us-east-1),
// AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY (both required) and
// AWS_SESSION_TOKEN.
func ParseS3(rawURL string, env []string) (S3Config, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return S3Config{}, fmt.Errorf("archive: %w", err)
	}
	if u.Scheme != "s3" || u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return S3Config{}, fmt.Errorf("archive: %q: want s3://BUCKET/PREFIX", rawURL)
	}
	cfg := S3Config{Bucket: u.Host, Prefix: strings.Trim(u.Path, "/")}
	if !validBucket(cfg.Bucket) {
		return S3Config{}, fmt.Errorf("archive: %q: invalid bucket name %q", rawURL, cfg.Bucket)
	}
	if cfg.Prefix != "" {
		if err := checkKey(cfg.Prefix); err != nil {
			return S3Config{}, fmt.Errorf("archive: %q: invalid prefix %q", rawURL, cfg.Prefix)
		}
	}
	e := envMap(env)
	first := func(names ...string) string {
		for _, n := range names {
			if v := e[n]; v != "" {
				return v
			}
		}
		return ""
	}
	cfg.Endpoint = first("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")
	if cfg.Endpoint != "" {
		eu, err := url.Parse(cfg.Endpoint)
		if err != nil || (eu.Scheme != "http" && eu.Scheme != "https") || eu.Host == "" {
			return S3Config{}, fmt.Errorf("archive: endpoint %q: want http(s)://HOST[:PORT]", cfg.Endpoint)
		}
		cfg.PathStyle = true
	}
	cfg.Region = first("AWS_REGION", "AWS_DEFAULT_REGION")
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	cfg.AccessKeyID, cfg.SecretAccessKey = e["AWS_ACCESS_KEY_ID"], e["AWS_SECRET_ACCESS_KEY"]
	cfg.SessionToken = e["AWS_SESSION_TOKEN"]
	if cfg.AccessKeyID == "" || cfg.SecretAccessKey == "" {
		return S3Config{}, fmt.Errorf("archive: %s: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must both be set", cfg)
	}
	return cfg, nil
}

func validBucket(b string) bool {
	if len(b) < 3 || len(b) > 63 {
		return false
	}
	for _, c := range []byte(b) {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}

// s3Backend stores objects in one bucket under a prefix.
type s3Backend struct {
	cfg    S3Config
	client *s3.Client
}

// probeTimeout bounds Open's probe when the caller's context has no deadline.
const probeTimeout = 30 * time.Second

// newS3Client returns an SDK client for cfg with opts' retry policy.
func newS3Client(cfg S3Config, opts Options) *s3.Client {
	creds := aws.Credentials{
		AccessKeyID: cfg.AccessKeyID, SecretAccessKey: cfg.SecretAccessKey, SessionToken: cfg.SessionToken,
		Source: "archive.S3Config",
	}
	o := s3.Options{
		Region:      cfg.Region,
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) { return creds, nil }),
		Retryer: retry.NewStandard(func(so *retry.StandardOptions) {
			so.MaxAttempts = opts.MaxAttempts
			so.MaxBackoff = opts.MaxBackoff
			so.RateLimiter = ratelimit.None
		}),
		UsePathStyle: cfg.PathStyle,
		// Weir checksums segments itself (CRC-32C in the manifest); the
		// SDK's default checksums cannot stream an unseekable body over
		// plain HTTP.
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
		HTTPClient:                 awshttp.NewBuildableClient(),
	}
	if cfg.Endpoint != "" {
		o.BaseEndpoint = aws.String(cfg.Endpoint)
	}
	return s3.New(o)
}

func openS3(ctx context.Context, cfg S3Config, opts Options) (*s3Backend, error) {
	b := &s3Backend{cfg: cfg, client: newS3Client(cfg, opts)}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, probeTimeout)
		defer cancel()
	}
	if _, err := b.client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(cfg.Bucket)}); err != nil {
		return nil, b.probeError("bucket", err)
	}
	if _, err := b.client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{
		Bucket: aws.String(cfg.Bucket), Prefix: aws.String(b.full("")), MaxKeys: aws.Int32(1),
	}); err != nil {
		return nil, b.probeError("list", err)
	}
	return b, nil
}

// probeError says what a failed probe means for an operator.
func (b *s3Backend) probeError(what string, err error) error {
	switch status(err) {
	case http.StatusForbidden:
		return fmt.Errorf("archive: %s: access denied (%s): check AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and the bucket policy: %w", b.cfg, what, err)
	case http.StatusNotFound:
		return fmt.Errorf("archive: %s: bucket %q does not exist: %w", b.cfg, b.cfg.Bucket, err)
	case 0:
		return fmt.Errorf("archive: %s: cannot reach the S3 endpoint: %w", b.cfg, err)
	}
	return fmt.Errorf("archive: %s: probe (%s) failed: %w", b.cfg, what, err)
}

// status is the HTTP status of a failed request, 0 if none arrived.
func status(err error) int {
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

func errorCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func (b *s3Backend) full(key string) string {
	if b.cfg.Prefix == "" {
		return key
	}
	return b.cfg.Prefix + "/" + key
}

func (b *s3Backend) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	if err := checkKey(key); err != nil {
		return err
	}
	if size < 0 {
		return fmt.Errorf("archive: put %s: negative size %d", key, size)
	}
	er := &exactReader{r: r, size: size}
	_, err := b.client.PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String(b.cfg.Bucket), Key: aws.String(b.full(key)),
		Body: er, ContentLength: aws.Int64(size),
	}, s3.WithAPIOptions(v4.SwapComputePayloadSHA256ForUnsignedPayloadMiddleware))
	if err != nil {
		return fmt.Errorf("archive: put %s: %w", key, err)
	}
	if err := er.check(); err != nil {
		// The store took size bytes of a longer body: not the object meant.
		_ = b.Delete(context.WithoutCancel(ctx), key)
		return fmt.Errorf("archive: put %s: %w", key, err)
	}
	return nil
}

func (b *s3Backend) Get(ctx context.Context, key string, off, n int64) (io.ReadCloser, error) {
	if err := checkKey(key); err != nil {
		return nil, err
	}
	if off < 0 {
		return nil, fmt.Errorf("archive: get %s: negative offset %d", key, off)
	}
	if n == 0 {
		info, err := b.Stat(ctx, key)
		if err != nil {
			return nil, err
		}
		if off > info.Size || off == info.Size && info.Size > 0 {
			return nil, fmt.Errorf("archive: get %s at %d of %d bytes: %w", key, off, info.Size, ErrRange)
		}
		return io.NopCloser(strings.NewReader("")), nil
	}
	in := &s3.GetObjectInput{Bucket: aws.String(b.cfg.Bucket), Key: aws.String(b.full(key))}
	switch {
	case n > 0:
		in.Range = aws.String(fmt.Sprintf("bytes=%d-%d", off, off+n-1))
	case off > 0:
		in.Range = aws.String(fmt.Sprintf("bytes=%d-", off))
	}
	out, err := b.client.GetObject(ctx, in)
	if err != nil {
		switch {
		case status(err) == http.StatusNotFound:
			return nil, fmt.Errorf("archive: get %s: %w", key, ErrNotFound)
		case status(err) == http.StatusRequestedRangeNotSatisfiable && off == 0:
			return io.NopCloser(strings.NewReader("")), nil // an empty object
		case status(err) == http.StatusRequestedRangeNotSatisfiable:
			return nil, fmt.Errorf("archive: get %s at %d: %w", key, off, ErrRange)
		}
		return nil, fmt.Errorf("archive: get %s: %w", key, err)
	}
	return out.Body, nil
}

func (b *s3Backend) Stat(ctx context.Context, key string) (ObjectInfo, error) {
	if err := checkKey(key); err != nil {
		return ObjectInfo{}, err
	}
	out, err := b.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(b.cfg.Bucket), Key: aws.String(b.full(key))})
	if err != nil {
		if status(err) == http.StatusNotFound {
			return ObjectInfo{}, fmt.Errorf("archive: stat %s: %w", key, ErrNotFound)
		}
		return ObjectInfo{}, fmt.Errorf("archive: stat %s: %w", key, err)
	}
	return ObjectInfo{Key: key, Size: aws.ToInt64(out.ContentLength), ModTime: aws.ToTime(out.LastModified)}, nil
}

func (b *s3Backend) List(ctx context.Context, prefix string) ([]ObjectInfo, error) {
	full := b.full(prefix)
	strip := b.full("")
	var out []ObjectInfo
	pages := s3.NewListObjectsV2Paginator(b.client, &s3.ListObjectsV2Input{Bucket: aws.String(b.cfg.Bucket), Prefix: aws.String(full)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("archive: list %q: %w", prefix, err)
		}
		for _, o := range page.Contents {
			k := strings.TrimPrefix(aws.ToString(o.Key), strip)
			if k == "" || strings.HasSuffix(k, "/") {
				continue // a "directory" marker some tools create
			}
			out = append(out, ObjectInfo{Key: k, Size: aws.ToInt64(o.Size), ModTime: aws.ToTime(o.LastModified)})
		}
	}
	slices.SortFunc(out, func(a, b ObjectInfo) int { return strings.Compare(a.Key, b.Key) })
	return out, nil
}

func (b *s3Backend) Delete(ctx context.Context, key string) error {
	if err := checkKey(key); err != nil {
		return err
	}
	_, err := b.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(b.cfg.Bucket), Key: aws.String(b.full(key))})
	if err != nil && status(err) != http.StatusNotFound && errorCode(err) != "NoSuchKey" {
		return fmt.Errorf("archive: delete %s: %w", key, err)
	}
	return nil
}

func (b *s3Backend) Close() error { return nil }

// String names the backend in logs.
func (b *s3Backend) String() string { return b.cfg.String() }
