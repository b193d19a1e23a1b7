"""Serializes records the way production producers do: with confluent-kafka's
AvroSerializer and ProtobufSerializer, which register their schemas in the
schema registry themselves and frame each message with the schema id (and,
for Protobuf, the message indexes).

The end-to-end tests call it and send the bytes it writes (one message per
line, hex) to Kafka or Kinesis themselves, so the wire format under test is
the official client's.

    serialize.py --registry URL [--user U --password P] --subject-topic T
        (--avro-schema FILE | --descriptor-set FILE --message-type NAME)
        --records FILE.jsonl --out FILE

Avro records are JSON objects whose values are Avro's underlying types
(timestamps as their integer, dates as days); `{"$hex": "…"}` is bytes and
`{"$decimal": "…"}` a Decimal. Protobuf records are proto3 JSON.
"""

import argparse
import decimal
import json
import sys

from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.serialization import MessageField, SerializationContext


def avro_value(value):
    if isinstance(value, dict):
        if set(value) == {"$hex"}:
            return bytes.fromhex(value["$hex"])
        if set(value) == {"$decimal"}:
            return decimal.Decimal(value["$decimal"])
        return {k: avro_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [avro_value(v) for v in value]
    return value


def avro_serializer(client, path):
    from confluent_kafka.schema_registry.avro import AvroSerializer

    with open(path, encoding="utf-8") as f:
        schema = f.read()
    serializer = AvroSerializer(client, schema, lambda record, ctx: avro_value(record))
    return serializer, lambda record: record


def protobuf_serializer(client, path, message_type):
    from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory
    from confluent_kafka.schema_registry.protobuf import ProtobufSerializer

    with open(path, "rb") as f:
        files = descriptor_pb2.FileDescriptorSet.FromString(f.read())
    pool = descriptor_pool.DescriptorPool()
    for file in files.file:  # dependencies come first
        pool.Add(file)
    message_class = message_factory.GetMessageClass(pool.FindMessageTypeByName(message_type))
    serializer = ProtobufSerializer(message_class, client, {"use.deprecated.format": False})
    return serializer, lambda record: json_format.ParseDict(record, message_class())


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--registry", required=True)
    parser.add_argument("--user")
    parser.add_argument("--password")
    parser.add_argument("--subject-topic", required=True)
    parser.add_argument("--avro-schema")
    parser.add_argument("--descriptor-set")
    parser.add_argument("--message-type")
    parser.add_argument("--records", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()

    conf = {"url": args.registry}
    if args.user:
        conf["basic.auth.user.info"] = f"{args.user}:{args.password}"
    client = SchemaRegistryClient(conf)
    if args.avro_schema:
        serializer, build = avro_serializer(client, args.avro_schema)
    elif args.descriptor_set and args.message_type:
        serializer, build = protobuf_serializer(client, args.descriptor_set, args.message_type)
    else:
        sys.exit("give --avro-schema, or --descriptor-set and --message-type")

    context = SerializationContext(args.subject_topic, MessageField.VALUE)
    written = 0
    with open(args.records, encoding="utf-8") as records, open(args.out, "w", encoding="ascii") as out:
        for line in records:
            if line.strip():
                out.write(serializer(build(json.loads(line)), context).hex() + "\n")
                written += 1
    print(f"serialized {written} records", file=sys.stderr)


if __name__ == "__main__":
    main()
