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
//	campaign CHANNEL SIZE           ->  ok ID   (the node a new chain's campaign starts on)
//	block NUMBER PREV,ENV,ENV...    ->  ok HEX  (the block a leader proposes, hex fields)
//	(any failure)     ->  err TEXT
package main

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/golang/protobuf/proto"
	"github.com/hyperledger/fabric/protoutil"
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
		return "", fmt.Errorf("want: OPERATION ARG ARG")
	}
	switch fields[0] {
	case "campaign":
		// etcdraft's node.start, for a fresh chain that is not joining.
		size, err := strconv.ParseUint(fields[2], 10, 64)
		if err != nil {
			return "", err
		}
		sha := sha256.Sum256([]byte(fields[1]))
		number, _ := proto.DecodeVarint(sha[24:])
		return strconv.FormatUint(number%size+1, 10), nil
	case "block":
		// etcdraft's blockCreator.createNextBlock, marshalled as the leader proposes it.
		number, err := strconv.ParseUint(fields[1], 10, 64)
		if err != nil {
			return "", err
		}
		parts := strings.Split(fields[2], ",")
		previous, err := hex.DecodeString(parts[0])
		if err != nil {
			return "", err
		}
		block := protoutil.NewBlock(number, previous)
		for _, part := range parts[1:] {
			envelope, err := hex.DecodeString(part)
			if err != nil {
				return "", err
			}
			block.Data.Data = append(block.Data.Data, envelope)
		}
		block.Header.DataHash = protoutil.BlockDataHash(block.Data)
		b, err := proto.Marshal(block)
		return hex.EncodeToString(b), err
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
