package harness

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/mwaa-kafka/pipeline/bench/internal/report"
)

// Producer settings every contender gets, so they differ in how they read and hand over lines, not in how
// Kafka is asked to store them: acks=all with idempotence, lz4, 5 ms linger, 1 MiB batches, and the same
// bounded local queue (8 MiB, the reader's default, passed to our readers explicitly; 100,000 messages).
const (
	compression    = "lz4"
	lingerMs       = 5
	batchBytes     = 1 << 20
	queueKBytes    = 8 << 10
	queueMessages  = 100000
	eventsPerBatch = 1000 // HighPerfTCPReader's many-events mode: events per Kafka message
)

func producerProps() [][2]string {
	return [][2]string{
		{"acks", "all"}, {"enable.idempotence", "true"}, {"compression.codec", compression},
		{"linger.ms", strconv.Itoa(lingerMs)}, {"batch.size", strconv.Itoa(batchBytes)},
		{"queue.buffering.max.kbytes", strconv.Itoa(queueKBytes)},
		{"queue.buffering.max.messages", strconv.Itoa(queueMessages)},
	}
}

// contender is one program under test.
type contender struct {
	Name  string
	Label string
	Ours  bool
	// listens: the source dials the contender (the syslog daemons, the collector); otherwise the contender
	// reads a connection to a listening source (our readers dial it; kcat gets the socket as its stdin).
	listens bool
	// tls: the source serves TLS and the reader verifies it (the same reader, for the TLS cost).
	tls bool
	// quoted: each message is one line written as a JSON string (the collector's raw encoding of a text
	// body); the check decodes it before comparing (see topiccheck.Expect.Quoted).
	quoted bool
}

func contenderByName(name string) contender {
	switch name {
	case report.HighPerfOne:
		return contender{Name: name, Label: "HighPerfTCPReader, 1 event/msg", Ours: true}
	case report.HighPerfOneTLS:
		return contender{Name: name, Label: "HighPerfTCPReader, 1 event/msg, TLS", Ours: true, tls: true}
	case report.HighPerfMany:
		return contender{Name: name, Label: fmt.Sprintf("HighPerfTCPReader, %d events/msg", eventsPerBatch), Ours: true}
	case report.Basic:
		return contender{Name: name, Label: "TCPLogReader, 1 event/msg", Ours: true}
	case report.Kcat:
		return contender{Name: name, Label: "kcat -P"}
	case report.Rsyslog:
		return contender{Name: name, Label: "rsyslog imtcp -> omkafka", listens: true}
	case report.OtelCol:
		return contender{Name: name, Label: "OpenTelemetry Collector tcp_log -> kafka", listens: true, quoted: true}
	default:
		return contender{Name: report.SyslogNG, Label: "syslog-ng network() -> kafka-c", listens: true}
	}
}

// launch describes one start of a contender.
type launch struct {
	topic       string
	sourceAddr  string // for contenders that read a listening source
	listenPort  int    // for contenders the source dials
	maxEvents   uint64 // our readers stop after this many lines, then drain and exit
	queueKBytes int    // our readers' local queue bound; 0: the default
	metricsAddr string // our readers' /metrics, or empty
	dir         string // files of this run
}

// start starts contender c as described by l.
func (h *harness) start(ctx context.Context, c contender, l launch) (*exec.Cmd, error) {
	stdout, err := os.Create(filepath.Join(l.dir, c.Name+".out"))
	if err != nil {
		return nil, fmt.Errorf("creating log file: %w", err)
	}
	defer stdout.Close()
	stderr, err := os.Create(filepath.Join(l.dir, c.Name+".err"))
	if err != nil {
		return nil, fmt.Errorf("creating log file: %w", err)
	}
	defer stderr.Close()
	var cmd *exec.Cmd
	switch c.Name {
	case report.HighPerfOne, report.HighPerfOneTLS, report.HighPerfMany, report.Basic:
		cmd = command(ctx, h.bins.reader, h.readerArgs(c, l)...)
	case report.Kcat:
		return h.startKcat(ctx, l, stdout, stderr)
	case report.Rsyslog:
		conf := filepath.Join(l.dir, "rsyslog.conf")
		if err := os.WriteFile(conf, []byte(rsyslogConf(h.stack.bootstrap(), l.topic, l.listenPort, l.dir)), 0o644); err != nil {
			return nil, fmt.Errorf("writing %s: %w", conf, err)
		}
		cmd = command(ctx, h.peers["BENCH_RSYSLOGD"], "-n", "-f", conf, "-i", filepath.Join(l.dir, "rsyslog.pid"),
			"-M", h.peers["BENCH_RSYSLOG_MODDIR"])
	case report.SyslogNG:
		conf := filepath.Join(l.dir, "syslog-ng.conf")
		if err := os.WriteFile(conf, []byte(syslogNGConf(h.stack.bootstrap(), l.topic, l.listenPort)), 0o644); err != nil {
			return nil, fmt.Errorf("writing %s: %w", conf, err)
		}
		cmd = command(ctx, h.peers["BENCH_SYSLOG_NG"], "-F", "--no-caps", "-f", conf,
			"--module-path="+h.peers["BENCH_SYSLOG_NG_MODDIR"], "-R", filepath.Join(l.dir, "syslog-ng.persist"),
			"-p", filepath.Join(l.dir, "syslog-ng.pid"), "-c", filepath.Join(l.dir, "syslog-ng.ctl"))
		cmd.Env = append(os.Environ(), "LD_LIBRARY_PATH="+h.peers["BENCH_PEERS_LD_LIBRARY_PATH"])
	case report.OtelCol:
		conf := filepath.Join(l.dir, "otelcol.yaml")
		if err := os.WriteFile(conf, []byte(otelcolConf(h.stack.bootstrap(), l.topic, l.listenPort)), 0o644); err != nil {
			return nil, fmt.Errorf("writing %s: %w", conf, err)
		}
		cmd = command(ctx, h.bins.otelcol, "--config", "file:"+conf)
	default:
		return nil, fmt.Errorf("%w: unknown contender %q", ErrInvalidConfig, c.Name)
	}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", c.Label, err)
	}
	return cmd, nil
}

func (h *harness) readerArgs(c contender, l launch) []string {
	kind, per := "highperf", 1
	switch c.Name {
	case report.HighPerfMany:
		per = eventsPerBatch
	case report.Basic:
		kind = "basic"
	}
	args := []string{
		"--source-mode", "connect", "--source-addr", l.sourceAddr, "--reader", kind,
		"--events-per-message", strconv.Itoa(per), "--validation", "strict",
		"--security-protocol", "plaintext", "--bootstrap", h.stack.bootstrap(),
		"--topic", l.topic, "--dlq-file", filepath.Join(l.dir, c.Name+".dlq.jsonl"),
		"--compression", compression, "--linger-ms", strconv.Itoa(lingerMs),
		"--max-events", strconv.FormatUint(l.maxEvents, 10), "--drain-timeout", "5m",
		"--metrics-addr", l.metricsAddr, "--log-level", "warn",
		"--summary-file", filepath.Join(l.dir, c.Name+".summary.json"),
	}
	if l.queueKBytes > 0 {
		args = append(args, "--queue-max-kbytes", strconv.Itoa(l.queueKBytes))
	}
	if c.tls {
		args = append(args, "--source-tls", "--source-tls-ca", h.tls.ca)
	}
	return append(args, h.cfg.ReaderArgs...)
}

// startKcat connects to the listening source and gives kcat the socket itself as its standard input, so
// kcat reads the TCP stream directly, with no relay process in between.
func (h *harness) startKcat(ctx context.Context, l launch, stdout, stderr *os.File) (*exec.Cmd, error) {
	conn, err := net.Dial("tcp", l.sourceAddr)
	if err != nil {
		return nil, fmt.Errorf("connecting kcat's input to the source: %w", err)
	}
	defer conn.Close()
	sock, err := conn.(*net.TCPConn).File()
	if err != nil {
		return nil, fmt.Errorf("taking the socket for kcat: %w", err)
	}
	defer sock.Close()
	sock.Fd() // puts the descriptor in blocking mode, as a program's stdin expects
	args := []string{"-P", "-b", h.stack.bootstrap(), "-t", l.topic, "-q"}
	for _, kv := range producerProps() {
		args = append(args, "-X", kv[0]+"="+kv[1])
	}
	cmd := command(ctx, h.peers["BENCH_KCAT"], args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = sock, stdout, stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting kcat: %w", err)
	}
	return cmd, nil
}

// rsyslogConf forwards each line received on imtcp, unchanged (%rawmsg%), to the topic with omkafka.
// resubmitOnFailure makes omkafka retry a message librdkafka refused (its local queue full) instead of
// dropping it: the setting for anyone who wants every line, as flow-control is for syslog-ng.
func rsyslogConf(bootstrap, topic string, port int, dir string) string {
	var props []string
	for _, kv := range producerProps() {
		if kv[0] != "acks" {
			props = append(props, fmt.Sprintf("%q", kv[0]+"="+kv[1]))
		}
	}
	return fmt.Sprintf(`# Generated by the benchmark: imtcp on loopback -> omkafka, the raw line unchanged.
global(workDirectory=%q processInternalMessages="on" maxMessageSize="64k")
module(load="imtcp")
module(load="omkafka")
template(name="raw" type="string" string="%%rawmsg%%")
input(type="imtcp" port="%d" address="127.0.0.1" ruleset="tokafka")
ruleset(name="tokafka") {
  action(type="omkafka" broker=[%q] topic=%q template="raw" resubmitOnFailure="on"
         confParam=[%s]
         topicConfParam=["acks=all"])
}
`, dir, port, bootstrap, topic, strings.Join(props, ", "))
}

// syslogNGConf forwards each line received by network() without parsing it (flags(no-parse): the whole
// line is $MSG) to the topic with kafka-c. flags(flow-control) makes the source stop reading while the
// destination's queue is full, as our readers do; without it syslog-ng drops what overflows its queue, which is
// not a setup anyone wanting every line would run.
func syslogNGConf(bootstrap, topic string, port int) string {
	var props []string
	for _, kv := range producerProps() {
		props = append(props, fmt.Sprintf("%q => %q", kv[0], kv[1]))
	}
	return fmt.Sprintf(`@version: 3.38
# Generated by the benchmark: network() on loopback -> kafka-c, the raw line unchanged.
options { stats-freq(0); log-msg-size(65536); };
source s_tcp { network(ip("127.0.0.1") port(%d) transport("tcp") flags(no-parse) max-connections(10)); };
destination d_kafka {
  kafka-c(
    bootstrap-servers(%q)
    topic(%q)
    message("$MSG")
    config(%s)
  );
};
log { source(s_tcp); destination(d_kafka); flags(flow-control); };
`, port, bootstrap, topic, strings.Join(props, " "))
}

// otelcolConf is the collector's pipeline: the tcp_log receiver on loopback -> the Kafka exporter, set up to
// lose nothing and with the producer limits every contender gets.
//
//   - The receiver frames lines on newlines (with its default utf-8 encoding: with encoding nop it does
//     not split lines at all), so the body is the line as received.
//   - The exporter's raw encoding sends each log record as its own message. The tcp_log receiver always makes
//     a text body, and raw writes a text body as a JSON string (quoted and escaped: bytes bodies alone go out
//     as they are), so the topic holds each line as a JSON string: the check decodes it (Expect.Quoted).
//   - Lossless: the sending queue blocks the receiver when full (block_on_overflow) instead of refusing data,
//     and retries never give up (max_elapsed_time 0), as resubmitOnFailure and flow-control do for the
//     syslog daemons. The queue holds 8 MiB (bytes sizer), the local queue bound every contender has.
//   - Producer: acks=all (franz-go then produces idempotently, its default), lz4, 5 ms linger, 1 MiB batches
//     (max_message_bytes is franz-go's batch limit), at most 100,000 buffered records. The queue's batcher
//     flushes after the same 5 ms or at 1 MiB, and hands each batch to the producer as one request.
//   - The collector's own metrics and traces are off (the metrics endpoint would take a port); warnings
//     and errors still go to stderr.
func otelcolConf(bootstrap, topic string, port int) string {
	return fmt.Sprintf(`# Generated by the benchmark: tcp_log on loopback -> kafka, each line one message.
receivers:
  tcp_log:
    listen_address: "127.0.0.1:%d"
exporters:
  kafka:
    brokers: [%q]
    client_id: otelcol-bench
    logs:
      topic: %q
      encoding: raw
    producer:
      required_acks: all
      compression: %s
      linger: %dms
      max_message_bytes: %d
      flush_max_messages: %d
      allow_auto_topic_creation: false
    retry_on_failure:
      enabled: true
      max_elapsed_time: 0s
    sending_queue:
      enabled: true
      block_on_overflow: true
      sizer: bytes
      queue_size: %d
      batch:
        flush_timeout: %dms
        min_size: %d
        max_size: %d
service:
  telemetry:
    logs:
      level: warn
    metrics:
      level: none
  pipelines:
    logs:
      receivers: [tcp_log]
      exporters: [kafka]
`, port, bootstrap, topic, compression, lingerMs, batchBytes, queueMessages, queueKBytes<<10, lingerMs, batchBytes, batchBytes)
}
