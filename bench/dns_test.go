package bench

import (
	"net"

	"golang.org/x/net/dns/dnsmessage"
)

// serveFakeDNS answers every A/AAAA question on connection with the given
// addresses (IPv4 for A, IPv6 for AAAA) until the connection is closed.
func serveFakeDNS(connection net.PacketConn, addresses []string) {
	buffer := make([]byte, 512)
	for {
		size, peer, err := connection.ReadFrom(buffer)
		if err != nil {
			return
		}
		var parser dnsmessage.Parser
		header, err := parser.Start(buffer[:size])
		if err != nil {
			continue
		}
		question, err := parser.Question()
		if err != nil {
			continue
		}
		builder := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: header.ID, Response: true, Authoritative: true})
		builder.EnableCompression()
		_ = builder.StartQuestions()
		_ = builder.Question(question)
		_ = builder.StartAnswers()
		resource := dnsmessage.ResourceHeader{Name: question.Name, Class: dnsmessage.ClassINET, TTL: 60}
		for _, text := range addresses {
			ip := net.ParseIP(text)
			if ip4 := ip.To4(); ip4 != nil && question.Type == dnsmessage.TypeA {
				_ = builder.AResource(resource, dnsmessage.AResource{A: [4]byte(ip4)})
			} else if ip4 == nil && question.Type == dnsmessage.TypeAAAA {
				_ = builder.AAAAResource(resource, dnsmessage.AAAAResource{AAAA: [16]byte(ip.To16())})
			}
		}
		answer, err := builder.Finish()
		if err == nil {
			_, _ = connection.WriteTo(answer, peer)
		}
	}
}
