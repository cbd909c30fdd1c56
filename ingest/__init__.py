"""The ingest: MQTT in (QoS 1, acknowledged only after commit), PostgreSQL out.

mqtt.MqttSource  --bounded queue-->  service.IngestService  --batch-->  readings.rows.write
 (paho, on the loop)                  (asyncio: decode, batch,          (one transaction: readings,
                                       write, then ack)                  live state, dead letters)
"""
