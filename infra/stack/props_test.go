package stack_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/mwaa-kafka/pipeline/infra/lambdabuild"
	"github.com/mwaa-kafka/pipeline/infra/stack"
)

type mapContext map[string]any

func (m mapContext) TryGetContext(key *string) any { return m[*key] }

func TestFromContext(t *testing.T) {
	tests := []struct {
		name    string
		ctx     mapContext
		wantErr string // a context key the error must name; empty means valid
		check   func(t *testing.T, p stack.Props)
	}{
		{name: "defaults", ctx: mapContext{"sourceAddr": "src:5170"}, check: func(t *testing.T, p stack.Props) {
			if p.SourceMode != "connect" || p.Topic != "logs_4" || p.DLQTopic != "logs_4_dlq" ||
				p.SecretName != "MWAA_Secrets" || p.ReaderDesiredCount != 1 || p.LogRetentionDays != 30 ||
				p.LambdaDir != "" || p.LambdaArchitecture != lambdabuild.HostArch() {
				t.Errorf("defaults = %+v", p)
			}
		}},
		{name: "cdk.json types", ctx: mapContext{"sourceAddr": "src:5170", "logRetentionDays": 90.0, "scheduledReader": true},
			check: func(t *testing.T, p stack.Props) {
				if p.LogRetentionDays != 90 || !p.ScheduledReader || p.ReaderDesiredCount != 0 {
					t.Errorf("retention %d, scheduled %v, desired %d; want 90, true, 0", p.LogRetentionDays, p.ScheduledReader, p.ReaderDesiredCount)
				}
			}},
		{name: "explicit count with schedule", ctx: mapContext{"sourceAddr": "src:5170", "scheduledReader": "true", "readerDesiredCount": "2"},
			check: func(t *testing.T, p stack.Props) {
				if p.ReaderDesiredCount != 2 {
					t.Errorf("ReaderDesiredCount = %d, want 2", p.ReaderDesiredCount)
				}
			}},
		{name: "listen port", ctx: mapContext{"sourceMode": "listen", "sourceAddr": "0.0.0.0:6000", "loadBalancer": "true"},
			check: func(t *testing.T, p stack.Props) {
				if port, err := p.ListenPort(); port != 6000 || err != nil {
					t.Errorf("ListenPort() = %d, %v; want 6000, nil", port, err)
				}
			}},
		{name: "connect mode without source", ctx: mapContext{}, check: func(t *testing.T, p stack.Props) {
			if p.SourceAddr != "" || p.SourceMode != "connect" {
				t.Errorf("SourceAddr %q, mode %q; want empty (a deploy-time parameter), connect", p.SourceAddr, p.SourceMode)
			}
		}},
		{name: "arm64", ctx: mapContext{"sourceAddr": "src:1", "lambdaArchitecture": "arm64"}, check: func(t *testing.T, p stack.Props) {
			if p.LambdaArchitecture != lambdabuild.ARM64 {
				t.Errorf("LambdaArchitecture = %q, want arm64", p.LambdaArchitecture)
			}
		}},
		{name: "environment", ctx: mapContext{"sourceAddr": "src:1", "env": "production", "logRetentionDays": 30.0,
			"environments": map[string]any{"production": map[string]any{"logRetentionDays": 365.0, "retainLogs": true, "deletionProtection": true}}},
			check: func(t *testing.T, p stack.Props) {
				if p.EnvName != "production" || p.LogRetentionDays != 365 || !p.RetainLogs || !p.DeletionProtection || stack.StackName(p.EnvName) != "LogPipeline-production" {
					t.Errorf("env %q (stack %s), retention %d, retain %v, protection %v; want production's settings",
						p.EnvName, stack.StackName(p.EnvName), p.LogRetentionDays, p.RetainLogs, p.DeletionProtection)
				}
			}},
		{name: "unknown environment", ctx: mapContext{"sourceAddr": "src:1", "env": "qa", "environments": map[string]any{}}, wantErr: "qa"},
		{name: "bad environment name", ctx: mapContext{"sourceAddr": "src:1", "env": "Prod env"}, wantErr: "env"},
		{name: "missing listen address", ctx: mapContext{"sourceMode": "listen"}, wantErr: "sourceAddr"},
		{name: "bad architecture", ctx: mapContext{"sourceAddr": "src:1", "lambdaArchitecture": "sparc"}, wantErr: "lambdaArchitecture"},
		{name: "source CIDRs as a comma list", ctx: mapContext{"sourceMode": "listen", "sourceAddr": ":1", "allowedSourceCidr": "203.0.113.0/24, 198.51.100.7/32"},
			check: func(t *testing.T, p stack.Props) {
				if strings.Join(p.AllowedSourceCIDRs, "|") != "203.0.113.0/24|198.51.100.7/32" {
					t.Errorf("AllowedSourceCIDRs = %q", p.AllowedSourceCIDRs)
				}
			}},
		{name: "source CIDRs as a cdk.json list", ctx: mapContext{"sourceMode": "listen", "sourceAddr": ":1", "allowedSourceCidr": []any{"10.1.0.0/16", "10.2.0.0/16"}},
			check: func(t *testing.T, p stack.Props) {
				if strings.Join(p.AllowedSourceCIDRs, "|") != "10.1.0.0/16|10.2.0.0/16" {
					t.Errorf("AllowedSourceCIDRs = %q", p.AllowedSourceCIDRs)
				}
			}},
		{name: "public balancer with mutual TLS", ctx: mapContext{"sourceMode": "listen", "sourceAddr": ":1", "loadBalancer": "true", "publicLoadBalancer": "true",
			"sourceTls": "reader", "sourceTlsSecret": "reader/tls", "sourceTlsMutual": "true"},
			check: func(t *testing.T, p stack.Props) {
				if p.SourceTLS != stack.SourceTLSReader || !p.SourceTLSMutual {
					t.Errorf("props = %+v", p)
				}
			}},
		{name: "public balancer without TLS", ctx: mapContext{"sourceMode": "listen", "sourceAddr": ":1", "loadBalancer": "true", "publicLoadBalancer": "true"},
			wantErr: "set sourceTls=reader, sourceTlsSecret=<secret with cert, key and ca> and sourceTlsMutual=true"},
		{name: "public balancer with TLS but no client verification", ctx: mapContext{"sourceMode": "listen", "sourceAddr": ":1", "loadBalancer": "true",
			"publicLoadBalancer": "true", "sourceTls": "reader", "sourceTlsSecret": "reader/tls"}, wantErr: "publicLoadBalancer"},
		{name: "public balancer terminating TLS itself", ctx: mapContext{"sourceMode": "listen", "sourceAddr": ":1", "loadBalancer": "true",
			"publicLoadBalancer": "true", "sourceTls": "loadBalancer", "loadBalancerCertificateArn": "arn:aws:acm:us-east-1:123456789012:certificate/x"}, wantErr: "publicLoadBalancer"},
		{name: "bad sourceTls", ctx: mapContext{"sourceAddr": "src:1", "sourceTls": "yes"}, wantErr: "sourceTls"},
		{name: "reader TLS in listen mode without a secret", ctx: mapContext{"sourceMode": "listen", "sourceAddr": ":1", "sourceTls": "reader"}, wantErr: "sourceTlsSecret"},
		{name: "balancer TLS without a certificate", ctx: mapContext{"sourceMode": "listen", "sourceAddr": ":1", "loadBalancer": "true", "sourceTls": "loadBalancer"},
			wantErr: "loadBalancerCertificateArn"},
		{name: "balancer TLS cannot verify clients", ctx: mapContext{"sourceMode": "listen", "sourceAddr": ":1", "loadBalancer": "true", "sourceTls": "loadBalancer",
			"loadBalancerCertificateArn": "arn:aws:acm:us-east-1:123456789012:certificate/x", "sourceTlsMutual": "true"}, wantErr: "sourceTlsMutual"},
		{name: "allow-list without mutual TLS", ctx: mapContext{"sourceMode": "listen", "sourceAddr": ":1", "sourceTls": "reader", "sourceTlsSecret": "s",
			"sourceTlsAllowedClients": "app-01"}, wantErr: "sourceTlsAllowedClients"},
		{name: "host bits in a CIDR", ctx: mapContext{"sourceMode": "listen", "sourceAddr": ":1", "allowedSourceCidr": "10.0.0.1/16"}, wantErr: "allowedSourceCidr"},
		{name: "source without port", ctx: mapContext{"sourceAddr": "src"}, wantErr: "sourceAddr"},
		{name: "bad mode", ctx: mapContext{"sourceAddr": "src:1", "sourceMode": "dial"}, wantErr: "sourceMode"},
		{name: "no-delivery window not a number", ctx: mapContext{"sourceAddr": "src:1", "noDeliveryMinutes": "ten"}, wantErr: "noDeliveryMinutes"},
		{name: "no-delivery window over a day", ctx: mapContext{"sourceAddr": "src:1", "noDeliveryMinutes": "2000"}, wantErr: "noDeliveryMinutes"},
		{name: "source always sends not a bool", ctx: mapContext{"sourceAddr": "src:1", "sourceAlwaysSends": "often"}, wantErr: "sourceAlwaysSends"},
		{name: "balancer in connect mode", ctx: mapContext{"sourceAddr": "src:1", "loadBalancer": "true"}, wantErr: "loadBalancer"},
		{name: "schedule in listen mode", ctx: mapContext{"sourceAddr": ":1", "sourceMode": "listen", "scheduledReader": "true"}, wantErr: "scheduledReader"},
		{name: "bad bool", ctx: mapContext{"sourceAddr": "src:1", "loadBalancer": "yes please"}, wantErr: "loadBalancer"},
		{name: "bad retention", ctx: mapContext{"sourceAddr": "src:1", "logRetentionDays": "10"}, wantErr: "logRetentionDays"},
		{name: "bad cidr", ctx: mapContext{"sourceAddr": ":1", "sourceMode": "listen", "allowedSourceCidr": "10.0.0.0"}, wantErr: "allowedSourceCidr"},
		{name: "clickhouse without brokers", ctx: mapContext{"sourceAddr": "src:1", "clickhouseUrl": "https://ch:8443"}, wantErr: "kafkaBrokers"},
		{name: "negative count", ctx: mapContext{"sourceAddr": "src:1", "readerDesiredCount": "-1"}, wantErr: "readerDesiredCount"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := stack.FromContext(tt.ctx)
			if tt.wantErr != "" {
				if !errors.Is(err, stack.ErrInvalidProps) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("FromContext(%v) = %v, want ErrInvalidProps naming %s", tt.ctx, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("FromContext(%v) = %v", tt.ctx, err)
			}
			tt.check(t, p)
		})
	}
}

func TestEnvFromCLI(t *testing.T) {
	env := map[string]string{"CDK_DEFAULT_ACCOUNT": "123456789012", "CDK_DEFAULT_REGION": "eu-west-1"}
	if e := stack.EnvFromCLI(func(k string) string { return env[k] }); e == nil || *e.Account != "123456789012" || *e.Region != "eu-west-1" {
		t.Errorf("EnvFromCLI = %+v, want the CLI's account and region", e)
	}
	if e := stack.EnvFromCLI(func(string) string { return "" }); e != nil {
		t.Errorf("EnvFromCLI without credentials = %+v, want nil (environment-agnostic)", e)
	}
}
