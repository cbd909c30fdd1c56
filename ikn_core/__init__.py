"""What every part of IKN Workspace agrees on: the MQTT contract, the domain
model and rules, and settings. Imports nothing from the database or web stack,
so an edge device can install it alone."""
