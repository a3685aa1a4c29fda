package procstat

import (
	"context"
	"os"
	"testing"
	"time"
)

func TestRSSOfSelf(t *testing.T) {
	rss, err := RSS(os.Getpid())
	if err != nil {
		t.Fatalf("RSS(self) error: %v", err)
	}
	peak, err := PeakRSS(os.Getpid())
	if err != nil {
		t.Fatalf("PeakRSS(self) error: %v", err)
	}
	if rss < 1<<20 || peak < rss {
		t.Fatalf("RSS = %d, PeakRSS = %d: want RSS of at least 1 MiB and a peak no lower", rss, peak)
	}
}

func TestRSSOfMissingProcess(t *testing.T) {
	if _, err := RSS(1 << 30); err == nil {
		t.Fatal("RSS(no such pid) = nil error, want one")
	}
}

func TestSamplerGrowsWithAllocation(t *testing.T) {
	s := Start(context.Background(), os.Getpid(), 10*time.Millisecond)
	time.Sleep(50 * time.Millisecond)
	hold := make([]byte, 64<<20)
	for i := range hold {
		hold[i] = byte(i)
	}
	time.Sleep(50 * time.Millisecond)
	samples := s.Stop()
	if len(samples) < 4 {
		t.Fatalf("got %d samples in 100ms at 10ms, want at least 4", len(samples))
	}
	first, last := samples[0].RSS, samples[len(samples)-1].RSS
	if last-first < 32<<20 {
		t.Fatalf("RSS grew %d bytes after touching 64 MiB, want at least 32 MiB", last-first)
	}
	_ = hold[len(hold)-1]
}

func TestParseStatCPU(t *testing.T) {
	tests := []struct {
		name    string
		line    string
		want    time.Duration
		wantErr bool
	}{
		{"plain", "42 (java) S 1 42 42 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 30 0 1 2 3", 3250 * time.Millisecond, false},
		{"name with spaces and parentheses", "7 (rdk:broker (1) x) R 1 7 7 0 -1 0 0 0 0 0 3 4 0 0 20 0 1 0", 70 * time.Millisecond, false},
		{"no command name", "42 java S 1", 0, true},
		{"too few fields", "42 (java) S 1 42", 0, true},
		{"not a number", "42 (java) S 1 42 42 0 -1 4194560 100 0 0 0 x 75 0", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseStatCPU([]byte(tt.line))
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Fatalf("parseStatCPU = %v, %v; want %v, error %t", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestCPUTimeOfSelfGrows(t *testing.T) {
	before, err := CPUTime(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	// Spin until the process's own clock shows 30 ms more, within a generous bound: on a busy machine 100 ms
	// of spinning can get less than 30 ms of a core, so a fixed spin would test the machine's load.
	var after time.Duration
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); {
		for x, stop := 0, time.Now().Add(10*time.Millisecond); time.Now().Before(stop); x++ {
			_ = x * x
		}
		if after, err = CPUTime(os.Getpid()); err != nil {
			t.Fatal(err)
		}
		if after-before >= 30*time.Millisecond {
			break
		}
	}
	if after-before < 30*time.Millisecond {
		t.Fatalf("CPU time went from %v to %v over 10 s of spinning", before, after)
	}
}
