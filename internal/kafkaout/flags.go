package kafkaout

import (
	"flag"
	"sort"
	"strings"
)

// Defaults of the flags RegisterFlags adds, which are also the producer's own defaults.
const (
	DefaultCompression = "lz4"
	DefaultLingerMs    = 5
)

// RegisterFlags registers the flags that set c: how to reach the brokers (the credentials themselves come
// from the secrets package, never from a flag) and how to batch and bound what is produced.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	c.SecurityProtocol = SASLSSL
	fs.Var(&c.SecurityProtocol, "security-protocol", "sasl_ssl (PLAIN), ssl or plaintext")
	fs.StringVar(&c.Brokers, "bootstrap", "", "bootstrap servers, overriding the secret's (plaintext needs no credentials)")
	fs.StringVar(&c.CAFile, "ca-file", "", "PEM CA bundle to verify the broker certificate (default: system CAs)")
	fs.BoolVar(&c.InsecureSkipVerify, "insecure-skip-tls-verify", false, "do NOT verify the broker certificate (logs a warning)")
	fs.Var((*overrides)(&c.Overrides), "kafka-property", "librdkafka overrides, key=value[,key=value...]")
	fs.StringVar(&c.Compression, "compression", DefaultCompression, "lz4, zstd, snappy, gzip or none")
	fs.IntVar(&c.LingerMs, "linger-ms", DefaultLingerMs, "producer linger in milliseconds")
	fs.IntVar(&c.QueueMaxKBytes, "queue-max-kbytes", DefaultQueueMaxKBytes, "producer local queue bound in KiB: the memory bound under a slow broker, and what a crash can lose")
}

// overrides is the --kafka-property flag: librdkafka properties parsed once by ParseOverrides.
type overrides map[string]string

func (o *overrides) Set(s string) error {
	m, err := ParseOverrides(s)
	if err != nil {
		return err
	}
	*o = m
	return nil
}

func (o *overrides) String() string {
	if o == nil || len(*o) == 0 {
		return ""
	}
	kv := make([]string, 0, len(*o))
	for k, v := range *o {
		kv = append(kv, k+"="+v)
	}
	sort.Strings(kv)
	return strings.Join(kv, ",")
}
