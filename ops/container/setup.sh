#!/bin/sh
# One-off: a CA, three node certificates and an admin certificate in /certs (the
# compose volume `certs`). Does nothing if the CA exists.
set -eu
if [ -f /certs/ca.pem ]; then echo "certificates exist"; exit 0; fi
yiwang cert init-ca --out /certs
for k in 1 2 3; do
    # yw$k for the other nodes; localhost for clients on the host (ports 844k).
    yiwang cert issue --ca /certs --node "$k" --name "node-$k" --dns "yw$k" --dns localhost --ip 127.0.0.1
done
yiwang cert issue --ca /certs --dept 320600-DSJ --name admin
chmod 0644 /certs/*.key   # the nodes run as uid 10001; keep this volume private
