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
