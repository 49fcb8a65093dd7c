"""The embedded default: the streaming job from `jobs/kappa` run end to end on one machine.

`python -m kappa_local run` starts local stand-ins for the cloud (moto, Google's Pub/Sub and
Bigtable fakes, Debian's PostgreSQL), creates the stream, storage and table, starts the real
job (`python -m kappa --spec ...`) in local Spark, sends synthetic events and checks the
serving store against a truth computed in plain Python. `python -m kappa_local produce`
sends the same synthetic events to a stream or topic, local or in a real cloud.

Nothing here is shipped to a cluster, and the job never imports it.
"""
