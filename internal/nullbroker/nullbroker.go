// Package nullbroker is a benchmark ceiling: a Kafka-protocol server that
// parses produce requests and acknowledges them, doing as little as a
// broker could and still claim to have received the records. It bounds
// what any broker can achieve on a machine, so that broker figures can be
// read as a fraction of it (docs/benchmarks.md, "Side by side").
//
// It serves only what a franz-go producer needs: ApiVersions, Metadata,
// CreateTopics, InitProducerID and Produce (v3+, record batches). It keeps
// no records and serves no fetches. Three modes:
//
//   - ModeAck acknowledges at once: the cost of the protocol alone.
//   - ModeFile also writes every batch to a file (page cache): one file per
//     partition, as Kafka lays out its logs, or one shared file.
//   - ModeFsync writes the batches and acknowledges only after an
//     fdatasync that covers them; one syncer goroutine per file
//     group-commits whatever all connections wrote to it meanwhile, so one
//     fdatasync serves many requests.
//
// Per connection a reader parses and handles requests in order and a
// writer sends the replies in the same order, each once its fsync is done.
//
// It imports no Weir package (internal/archtest checks): it must not share
// Weir's code paths, or it would not bound them.
package nullbroker

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Mode is what the server does with produced batches before acknowledging.
type Mode int

const (
	// ModeAck acknowledges without storing.
	ModeAck Mode = iota
	// ModeFile writes the batches to a file, then acknowledges.
	ModeFile
	// ModeFsync writes the batches and acknowledges after fdatasync.
	ModeFsync
)

// ParseMode returns the mode named ack, file or fsync.
func ParseMode(s string) (Mode, error) {
	switch s {
	case "ack":
		return ModeAck, nil
	case "file":
		return ModeFile, nil
	case "fsync":
		return ModeFsync, nil
	}
	return 0, fmt.Errorf("nullbroker: mode %q: want ack, file or fsync", s)
}

// maxFrame bounds a request frame.
const maxFrame = 100 << 20

// Server is a running null broker.
type Server struct {
	mode Mode
	ln   net.Listener
	host string
	port int32

	dir    string
	shared *logFile // the one file, unless perPartition

	mu      sync.Mutex // guards topics, conns, closed
	topics  map[string][]partition
	conns   map[net.Conn]struct{}
	closed  bool
	nextPID atomic.Int64

	stop chan struct{}

	wg sync.WaitGroup
}

// Listen starts a server on addr. In ModeFile and ModeFsync the records
// go to dir: to dir/TOPIC-PARTITION.log with perPartition, else to
// dir/null.log. Existing files are truncated.
func Listen(addr string, mode Mode, dir string, perPartition bool) (*Server, error) {
	s := &Server{mode: mode, dir: dir, topics: map[string][]partition{}, conns: map[net.Conn]struct{}{},
		stop: make(chan struct{})}
	if mode != ModeAck {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
		if !perPartition {
			f, err := s.openFile("null.log")
			if err != nil {
				return nil, err
			}
			s.shared = f
		}
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		_ = s.closeFiles()
		return nil, err
	}
	s.ln = ln
	h, p, _ := net.SplitHostPort(ln.Addr().String())
	port, _ := strconv.Atoi(p)
	s.host, s.port = h, int32(port)
	s.wg.Go(s.acceptLoop)
	return s, nil
}

// openFile creates a log file and, in ModeFsync, starts its syncer.
func (s *Server) openFile(name string) (*logFile, error) {
	f, err := os.OpenFile(filepath.Join(s.dir, name), os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, err
	}
	lf := newLogFile(f, s.stop)
	if s.mode == ModeFsync {
		s.wg.Go(lf.syncLoop)
	}
	return lf, nil
}

func (s *Server) closeFiles() error {
	var errs []error
	if s.shared != nil {
		errs = append(errs, s.shared.f.Close())
	}
	for _, parts := range s.topics {
		for _, p := range parts {
			if p.file != nil && p.file != s.shared {
				errs = append(errs, p.file.f.Close())
			}
		}
	}
	return errors.Join(errs...)
}

// partition is one partition's next offset and file.
type partition struct {
	next *atomic.Int64
	file *logFile // nil in ModeAck
}

// Addr is the address the server listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Close stops the server and waits for its goroutines.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	for c := range s.conns {
		_ = c.Close()
	}
	s.mu.Unlock()
	err := s.ln.Close()
	close(s.stop)
	s.wg.Wait()
	return errors.Join(err, s.closeFiles())
}

func (s *Server) acceptLoop() {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			_ = c.Close()
			return
		}
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		s.wg.Go(func() {
			s.serve(c)
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
			_ = c.Close()
		})
	}
}

// reply is an encoded response, to be written once each wait is durable.
type reply struct {
	b     []byte
	waits []syncWait
}

// syncWait is a file position that must be durable.
type syncWait struct {
	f   *logFile
	pos int64
}

// serve runs one connection: requests are read and handled here, replies
// written in order by a second goroutine.
func (s *Server) serve(c net.Conn) {
	replies := make(chan reply, 64)
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.writeLoop(c, replies)
	}()
	defer func() {
		close(replies)
		<-done
	}()
	br := bufio.NewReaderSize(c, 64<<10)
	var frame []byte
	var size [4]byte
	for {
		if _, err := io.ReadFull(br, size[:]); err != nil {
			return
		}
		n := int(binary.BigEndian.Uint32(size[:]))
		if n < 8 || n > maxFrame {
			return
		}
		if cap(frame) < n {
			frame = make([]byte, n)
		}
		frame = frame[:n]
		if _, err := io.ReadFull(br, frame); err != nil {
			return
		}
		// The frame is reused: handle copies what it keeps (the records go
		// to the file before the next read).
		r, ok := s.handle(frame)
		if !ok {
			return
		}
		if r.b == nil {
			continue // acks=0
		}
		replies <- r
	}
}

func (s *Server) writeLoop(c net.Conn, replies <-chan reply) {
	bw := bufio.NewWriterSize(c, 64<<10)
	for r := range replies {
		ok := true
		for _, w := range r.waits {
			ok = ok && w.f.waitDurable(w.pos)
		}
		if !ok {
			_ = c.Close()
			continue // drain so the reader is not blocked
		}
		if _, err := bw.Write(r.b); err != nil {
			_ = c.Close()
			continue
		}
		if len(replies) == 0 {
			if err := bw.Flush(); err != nil {
				_ = c.Close()
			}
		}
	}
}

// handle parses and answers one request. ok is false when the
// connection must close.
func (s *Server) handle(frame []byte) (reply, bool) {
	key := int16(binary.BigEndian.Uint16(frame[0:]))
	version := int16(binary.BigEndian.Uint16(frame[2:]))
	corr := int32(binary.BigEndian.Uint32(frame[4:]))
	req := kmsg.RequestForKey(key)
	if req == nil || !supported(key) || version < 0 || version > req.MaxVersion() {
		if key == 18 { // ApiVersions: answer v0 so the client retries with ours
			resp := s.apiVersions()
			resp.ErrorCode = kerr.UnsupportedVersion.Code
			resp.SetVersion(0)
			return reply{b: frameResponse(corr, false, resp)}, true
		}
		return reply{}, false
	}
	req.SetVersion(version)
	flexible := req.IsFlexible()
	rd := kbin.Reader{Src: frame[8:]}
	rd.NullableString() // client id
	if flexible {
		kmsg.SkipTags(&rd)
	}
	if rd.Complete() != nil {
		return reply{}, false
	}
	if err := req.ReadFrom(rd.Src); err != nil {
		return reply{}, false
	}
	var (
		resp  kmsg.Response
		waits []syncWait
	)
	switch r := req.(type) {
	case *kmsg.ApiVersionsRequest:
		resp = s.apiVersions()
	case *kmsg.MetadataRequest:
		resp = s.metadata(r)
	case *kmsg.CreateTopicsRequest:
		resp = s.createTopics(r)
	case *kmsg.InitProducerIDRequest:
		ip := r.ResponseKind().(*kmsg.InitProducerIDResponse)
		ip.ProducerID = s.nextPID.Add(1)
		resp = ip
	case *kmsg.ProduceRequest:
		var p *kmsg.ProduceResponse
		p, waits = s.produce(r)
		if r.Acks == 0 {
			return reply{}, true
		}
		resp = p
	}
	resp.SetVersion(version)
	return reply{b: frameResponse(corr, flexible && key != 18, resp), waits: waits}, true
}

var supportedKeys = map[int16]int16{0: 3, 3: 0, 18: 0, 19: 0, 22: 0} // key: min version

func supported(key int16) bool { _, ok := supportedKeys[key]; return ok }

func frameResponse(corr int32, tags bool, resp kmsg.Response) []byte {
	b := make([]byte, 4, 64)
	b = kbin.AppendInt32(b, corr)
	if tags {
		b = append(b, 0)
	}
	b = resp.AppendTo(b)
	binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	return b
}

func (s *Server) apiVersions() *kmsg.ApiVersionsResponse {
	resp := kmsg.NewPtrApiVersionsResponse()
	for key, minV := range supportedKeys {
		k := kmsg.NewApiVersionsResponseApiKey()
		k.ApiKey, k.MinVersion, k.MaxVersion = key, minV, kmsg.RequestForKey(key).MaxVersion()
		resp.ApiKeys = append(resp.ApiKeys, k)
	}
	return resp
}

func (s *Server) metadata(r *kmsg.MetadataRequest) *kmsg.MetadataResponse {
	resp := r.ResponseKind().(*kmsg.MetadataResponse)
	b := kmsg.NewMetadataResponseBroker()
	b.NodeID, b.Host, b.Port = 0, s.host, s.port
	resp.Brokers = append(resp.Brokers, b)
	resp.ControllerID = 0
	id := "nullbroker"
	resp.ClusterID = &id
	s.mu.Lock()
	defer s.mu.Unlock()
	var names []string
	if r.Topics == nil {
		for name := range s.topics {
			names = append(names, name)
		}
	} else {
		for _, t := range r.Topics {
			if t.Topic != nil {
				names = append(names, *t.Topic)
			}
		}
	}
	for _, name := range names {
		t := kmsg.NewMetadataResponseTopic()
		t.Topic = kmsg.StringPtr(name)
		parts, ok := s.topics[name]
		if !ok {
			t.ErrorCode = kerr.UnknownTopicOrPartition.Code
		}
		for i := range parts {
			p := kmsg.NewMetadataResponseTopicPartition()
			p.Partition, p.Leader, p.Replicas, p.ISR = int32(i), 0, []int32{0}, []int32{0}
			t.Partitions = append(t.Partitions, p)
		}
		resp.Topics = append(resp.Topics, t)
	}
	return resp
}

func (s *Server) createTopics(r *kmsg.CreateTopicsRequest) *kmsg.CreateTopicsResponse {
	resp := r.ResponseKind().(*kmsg.CreateTopicsResponse)
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, rt := range r.Topics {
		t := kmsg.NewCreateTopicsResponseTopic()
		t.Topic, t.NumPartitions, t.ReplicationFactor = rt.Topic, rt.NumPartitions, 1
		n := rt.NumPartitions
		if n <= 0 {
			n = 1
		}
		switch _, ok := s.topics[rt.Topic]; {
		case ok:
			t.ErrorCode = kerr.TopicAlreadyExists.Code
		case n > 100000:
			t.ErrorCode = kerr.InvalidPartitions.Code
		default:
			t.NumPartitions = n
			if !r.ValidateOnly {
				if err := s.addTopic(rt.Topic, n); err != nil {
					t.ErrorCode = kerr.KafkaStorageError.Code
				}
			}
		}
		resp.Topics = append(resp.Topics, t)
	}
	return resp
}

// Offsets within a record batch header.
const (
	batchHeaderSize    = 61
	offLastOffsetDelta = 23
)

// addTopic creates a topic's partitions (and files). Called with s.mu held.
func (s *Server) addTopic(name string, n int32) error {
	parts := make([]partition, n)
	for i := range parts {
		parts[i].next = new(atomic.Int64)
		switch {
		case s.mode == ModeAck:
		case s.shared != nil:
			parts[i].file = s.shared
		default:
			f, err := s.openFile(fmt.Sprintf("%s-%d.log", filepath.Base(name), i))
			if err != nil {
				return err
			}
			parts[i].file = f
		}
	}
	s.topics[name] = parts
	return nil
}

// produce assigns offsets, writes the batches (file modes) and returns
// the response and, in ModeFsync, the file positions that must be durable
// before it is sent.
func (s *Server) produce(r *kmsg.ProduceRequest) (*kmsg.ProduceResponse, []syncWait) {
	resp := r.ResponseKind().(*kmsg.ProduceResponse)
	var waits []syncWait
	for _, rt := range r.Topics {
		t := kmsg.NewProduceResponseTopic()
		t.Topic = rt.Topic
		s.mu.Lock()
		parts := s.topics[rt.Topic] // never changes once created
		s.mu.Unlock()
		for _, rp := range rt.Partitions {
			p := kmsg.NewProduceResponseTopicPartition()
			p.Partition, p.BaseOffset, p.LogAppendTime = rp.Partition, -1, -1
			switch {
			case rp.Partition < 0 || int(rp.Partition) >= len(parts):
				p.ErrorCode = kerr.UnknownTopicOrPartition.Code
			case len(rp.Records) < batchHeaderSize:
				p.ErrorCode = kerr.CorruptMessage.Code
			default:
				// Offsets for every batch in the records.
				var n int64
				for rest := rp.Records; len(rest) >= batchHeaderSize; {
					size := 12 + int(binary.BigEndian.Uint32(rest[8:]))
					n += int64(int32(binary.BigEndian.Uint32(rest[offLastOffsetDelta:]))) + 1
					if size > len(rest) {
						break
					}
					rest = rest[size:]
				}
				part := parts[rp.Partition]
				p.BaseOffset = part.next.Add(n) - n
				if part.file != nil {
					end, err := part.file.write(rp.Records)
					switch {
					case err != nil:
						p.ErrorCode, p.BaseOffset = kerr.KafkaStorageError.Code, -1
					case s.mode == ModeFsync:
						part.file.kickSync()
						waits = append(waits, syncWait{part.file, end})
					}
				}
			}
			t.Partitions = append(t.Partitions, p)
		}
		resp.Topics = append(resp.Topics, t)
	}
	return resp, waits
}
