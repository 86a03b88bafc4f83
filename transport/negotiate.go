package transport

// Negotiation is the body of a negotiate answer (PROTOCOL.md section 2),
// written by the server and read by clients.
type Negotiation struct {
	Protocol        int      `json:"protocol"`
	Session         string   `json:"session"`
	Token           string   `json:"token"`
	Transports      []string `json:"transports"`
	HeartbeatMs     int64    `json:"heartbeatMs"`
	ResumeWindowMs  int64    `json:"resumeWindowMs"`
	MaxMessageBytes int      `json:"maxMessageBytes"`
	MaxBodyBytes    int      `json:"maxBodyBytes"`
}
