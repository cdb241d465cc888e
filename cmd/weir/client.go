package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

const (
	defaultBrokers = "localhost:9092"
	// dialTimeout and pingTimeout make an unreachable broker fail in a few
	// seconds rather than after kgo's retries.
	dialTimeout = 3 * time.Second
	pingTimeout = 5 * time.Second
	// opTimeout bounds one admin operation (not consume/produce streams).
	opTimeout = 30 * time.Second
)

// app holds the global flags shared by the client commands.
type app struct {
	brokers string
	format  string
	getenv  func(string) string
}

// preRun resolves the environment and checks the global flags.
func (a *app) preRun(cmd *cobra.Command, _ []string) error {
	if f := cmd.Flags().Lookup("brokers"); f != nil && !f.Changed {
		if env := strings.TrimSpace(a.getenv("WEIR_BROKERS")); env != "" {
			a.brokers = env
		}
	}
	switch a.format {
	case "text", "json":
	default:
		return fmt.Errorf("--format %q: want text or json", a.format)
	}
	if len(a.seeds()) == 0 {
		return errors.New("--brokers is empty: want host:port[,host:port...]")
	}
	return nil
}

func (a *app) json() bool { return a.format == "json" }

// seeds splits --brokers into host:port addresses, adding the default port.
func (a *app) seeds() []string {
	var out []string
	for _, s := range strings.Split(a.brokers, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(s); err != nil {
			s = net.JoinHostPort(s, "9092")
		}
		out = append(out, s)
	}
	return out
}

// addr names the brokers for messages.
func (a *app) addr() string { return strings.Join(a.seeds(), ",") }

// client connects to the seed brokers and checks that one answers, so that
// an unreachable cluster is one clear error instead of a long retry loop.
func (a *app) client(ctx context.Context, opts ...kgo.Opt) (*kgo.Client, error) {
	base := []kgo.Opt{
		kgo.SeedBrokers(a.seeds()...),
		kgo.ClientID("weir-cli"),
		kgo.DialTimeout(dialTimeout),
		kgo.RetryTimeout(opTimeout),
		kgo.MetadataMinAge(250 * time.Millisecond),
	}
	cl, err := kgo.NewClient(append(base, opts...)...)
	if err != nil {
		return nil, err
	}
	pctx, cancel := context.WithTimeout(ctx, pingTimeout)
	defer cancel()
	if err := cl.Ping(pctx); err != nil {
		cl.Close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("cannot reach broker at %s: %v", a.addr(), trimDialErr(err))
	}
	return cl, nil
}

// admin returns an admin client and its kgo client (to Close).
func (a *app) admin(ctx context.Context) (*kadm.Client, *kgo.Client, error) {
	cl, err := a.client(ctx)
	if err != nil {
		return nil, nil, err
	}
	adm := kadm.NewClient(cl)
	adm.SetTimeoutMillis(int32(opTimeout / time.Millisecond))
	return adm, cl, nil
}

// adminFor opens an admin client for one command, bounded by the
// operation timeout; release closes the client and releases the context.
func (a *app) adminFor(cmd *cobra.Command) (context.Context, *kadm.Client, *kgo.Client, func(), error) {
	ctx, cancel := opContext(cmd)
	adm, cl, err := a.admin(ctx)
	if err != nil {
		cancel()
		return nil, nil, nil, nil, err
	}
	return ctx, adm, cl, func() { cl.Close(); cancel() }, nil
}

// trimDialErr drops kgo's "unable to dial: " prefix.
func trimDialErr(err error) string {
	if errors.Is(err, context.DeadlineExceeded) {
		return "no answer within " + pingTimeout.String()
	}
	return strings.TrimPrefix(err.Error(), "unable to dial: ")
}

// explain rewrites a request error into the one readable line weir prints.
func (a *app) explain(what string, err error) error {
	if err == nil {
		return nil
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%s: broker at %s did not answer in time", what, a.addr())
	case strings.Contains(err.Error(), "broker is too old"):
		return fmt.Errorf("%s: the broker at %s does not support this request", what, a.addr())
	}
	return fmt.Errorf("%s: %s", what, kafkaMessage(err, ""))
}

// kafkaMessage renders a Kafka error: the broker's own message if it sent
// one (it names the culprit, unlike the code's generic description), else
// the code and its description.
func kafkaMessage(err error, brokerMsg string) string {
	if brokerMsg = strings.TrimPrefix(brokerMsg, "broker: "); brokerMsg != "" {
		return brokerMsg
	}
	var ke *kerr.Error
	if errors.As(err, &ke) {
		return ke.Message + ": " + strings.TrimSuffix(ke.Description, ".")
	}
	return err.Error()
}

// topicError explains a per-topic error.
func topicError(topic string, err error, brokerMsg string) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, kerr.UnknownTopicOrPartition), errors.Is(err, kerr.UnknownTopicID):
		return fmt.Errorf("topic %q does not exist", topic)
	case errors.Is(err, kerr.TopicAlreadyExists):
		return fmt.Errorf("topic %q already exists", topic)
	}
	return fmt.Errorf("topic %q: %s", topic, kafkaMessage(err, brokerMsg))
}

// groupError explains a per-group error.
func groupError(group string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, kerr.GroupIDNotFound):
		return fmt.Errorf("group %q does not exist", group)
	case errors.Is(err, kerr.NonEmptyGroup):
		return fmt.Errorf("group %q has active members; stop its consumers first", group)
	}
	return fmt.Errorf("group %q: %s", group, kafkaMessage(err, ""))
}

// joinErrors folds several errors into one line.
func joinErrors(errs []error) error {
	if len(errs) == 0 {
		return nil
	}
	msgs := make([]string, len(errs))
	for i, e := range errs {
		msgs[i] = e.Error()
	}
	return errors.New(strings.Join(msgs, "; "))
}

// existingTopics returns the details of topics, or an error naming the first
// one that does not exist.
func existingTopics(ctx context.Context, a *app, adm *kadm.Client, topics ...string) (kadm.TopicDetails, error) {
	td, err := adm.ListTopicsWithInternal(ctx, topics...)
	if err != nil {
		return nil, a.explain("list topics", err)
	}
	for _, t := range topics {
		d, ok := td[t]
		if !ok {
			return nil, fmt.Errorf("topic %q does not exist", t)
		}
		if d.Err != nil {
			return nil, topicError(t, d.Err, "")
		}
	}
	return td, nil
}

// wantArgs checks the positional arguments, naming what is missing in the
// one-line error (cobra's own says only "accepts 1 arg(s), received 0").
func wantArgs(min, max int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) < min || (max >= 0 && len(args) > max) {
			name := strings.TrimPrefix(cmd.CommandPath(), cmd.Root().Name()+" ")
			return fmt.Errorf("%s: want %s, got %d argument(s) (see '%s --help')", name, what, len(args), cmd.CommandPath())
		}
		return nil
	}
}
