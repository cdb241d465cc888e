package config

import (
	"strings"
	"testing"
)

func TestTopicNamePatternValidated(t *testing.T) {
	c := Defaults()
	c.TopicNamePattern = `orders\..+`
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	c.TopicNamePattern = `orders(`
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "topic-name-pattern") {
		t.Fatalf("bad pattern accepted: %v", err)
	}
}
