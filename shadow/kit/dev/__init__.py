"""Local services for development, tests and the demo: Apache Kafka (KRaft) and an S3 API server."""
