"""The event contracts every zhuqi service and union unit integrates against.

Data only: `schemas/<service>/<name>.v<N>.json` (JSON Schema of each event's
`data`), `asyncapi.yaml` (exchanges, routing keys, messages, consumer queues)
and `consumers.yaml` (the durable queues of the campaign's own consumers).
"""
