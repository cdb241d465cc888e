package broker

// Produce appends records to p through the gate, as a client write; the
// package's external tests (power loss) use it.
func (p *Partition) Produce(records []byte) (Appended, error) {
	pr, err := p.broker.Produce(Write{Topic: p.topic.Name, Partition: p.index, Records: records})
	return pr.Appended, err
}
