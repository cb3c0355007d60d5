// Command etcdraft-wire is the reference side of host/src/consensus/etcdraft's wire
// test: it marshals and unmarshals etcd raft messages exactly as Fabric v2.5's orderer
// does (golang/protobuf's proto.Marshal/Unmarshal over etcd's raftpb), so the Rust
// test can compare bytes and values. It builds only inside Fabric's source tree, with
// its vendor directory; the test lays it there with `go run -overlay`.
//
// One request per line on stdin, one answer per line on stdout:
//
//	enc msg|cc JSON   ->  ok HEX    (JSON: the raftpb struct, as encoding/json reads it)
//	dec msg|cc HEX    ->  ok JSON
//	(any failure)     ->  err TEXT
package main

import (
	"bufio"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"github.com/golang/protobuf/proto"
	"go.etcd.io/etcd/raft/v3/raftpb"
)

func value(kind string) (proto.Message, error) {
	switch kind {
	case "msg":
		return &raftpb.Message{}, nil
	case "cc":
		return &raftpb.ConfChange{}, nil
	}
	return nil, fmt.Errorf("unknown kind %q", kind)
}

func answer(line string) (string, error) {
	fields := strings.SplitN(line, " ", 3)
	if len(fields) != 3 {
		return "", fmt.Errorf("want: enc|dec KIND ARG")
	}
	m, err := value(fields[1])
	if err != nil {
		return "", err
	}
	switch fields[0] {
	case "enc":
		if err := json.Unmarshal([]byte(fields[2]), m); err != nil {
			return "", err
		}
		b, err := proto.Marshal(m)
		return hex.EncodeToString(b), err
	case "dec":
		b, err := hex.DecodeString(fields[2])
		if err != nil {
			return "", err
		}
		if err := proto.Unmarshal(b, m); err != nil {
			return "", err
		}
		j, err := json.Marshal(m)
		return string(j), err
	}
	return "", fmt.Errorf("unknown operation %q", fields[0])
}

func main() {
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 1<<24)
	for in.Scan() {
		if out, err := answer(in.Text()); err != nil {
			fmt.Println("err", err)
		} else {
			fmt.Println("ok", out)
		}
	}
}
