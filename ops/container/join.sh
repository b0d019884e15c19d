#!/bin/sh
# One-off, once all three nodes are up: nodes 2 and 3 join node 1's cluster as learners
# and are promoted to voters. Safe to run again.
set -eu
export YIWANG_SERVER=https://yw1:8443 YIWANG_CA=/certs/ca.pem \
       YIWANG_CERT=/certs/admin.pem YIWANG_KEY=/certs/admin.key
for k in 2 3; do
    yiwang cluster add-learner --id "$k" --addr "yw$k:8443" || true
done
yiwang cluster promote --ids 2,3
yiwang cluster status
