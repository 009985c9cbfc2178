#!/bin/bash
# Summarise an orders file: revenue per customer, sorted, plus a grand total.
set -euo pipefail
input="${1:-/data/orders.json}"
echo "summarising $(jq 'length' "$input") orders from $input" >&2
jq -S '{
  customers: (group_by(.customer)
    | map({customer: .[0].customer,
           orders: length,
           revenue: (map(.qty * .price) | add)})
    | sort_by(-.revenue)),
  total: (map(.qty * .price) | add)
}' "$input"
