package broker_test

import (
	"net"
	"strings"
	"testing"

	"github.com/remediator/remediator/broker"
	"github.com/remediator/remediator/broker/brokertest"
)

func TestConnectRefusedSaysWhatToDo(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now

	_, err = broker.Connect(testCtx(t), brokertest.ConnConfig("nats://"+addr), nil)
	if err == nil {
		t.Fatal("Connect to a closed port succeeded")
	}
	want := "cannot reach NATS at nats://" + addr + ": connection refused — is `remediator run` running, or set --nats-url/NATS_URL"
	if err.Error() != want {
		t.Fatalf("error:\n got %q\nwant %q", err, want)
	}
}

func TestConnectRequiresURL(t *testing.T) {
	t.Parallel()
	_, err := broker.Connect(testCtx(t), broker.ConnConfig{}, nil)
	if err == nil || !strings.Contains(err.Error(), "--nats-url") {
		t.Fatalf("err = %v, want a hint about --nats-url", err)
	}
}

func TestDrainClosesConnection(t *testing.T) {
	t.Parallel()
	b := brokertest.Connect(t)
	if !b.Connected() {
		t.Fatal("not connected after Connect")
	}
	if err := b.Drain(testCtx(t)); err != nil {
		t.Fatalf("Drain: %v", err)
	}
	if b.Connected() {
		t.Fatal("still connected after Drain")
	}
	if err := b.Drain(testCtx(t)); err != nil {
		t.Fatalf("second Drain: %v", err)
	}
}
