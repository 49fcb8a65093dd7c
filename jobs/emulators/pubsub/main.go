// Command pubsub-emulator serves Google's in-memory Pub/Sub fake (pstest) over gRPC, so the
// job's Pub/Sub reader can be tested against Google's own semantics rather than a mock.
//
// It prints "listening on HOST:PORT" once ready and serves until killed.
package main

import (
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"syscall"

	"cloud.google.com/go/pubsub/v2/pstest"
)

func main() {
	port := flag.Int("port", 0, "TCP port on 127.0.0.1 to listen on; 0 picks a free one")
	flag.Parse()

	server := pstest.NewServerWithAddress(fmt.Sprintf("127.0.0.1:%d", *port))
	defer func() {
		if err := server.Close(); err != nil {
			log.Printf("closing the fake: %v", err)
		}
	}()
	fmt.Printf("listening on %s\n", server.Addr)
	os.Stdout.Sync()

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	<-stop
}
