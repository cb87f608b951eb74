/**
 * The service-graph label set (DESIGN §6, Istio's vocabulary under `weft_`): who called whom,
 * with what outcome. Cardinality is bounded: no path, address or id ever becomes a label.
 */
import type { TrafficDirection } from '../config/types.ts';

export const REQUEST_LABELS = [
  'reporter',
  'source_workload',
  'source_namespace',
  'source_principal',
  'destination_service',
  'destination_service_name',
  'destination_service_namespace',
  'destination_workload',
  'destination_namespace',
  'destination_principal',
  'request_protocol',
  'response_code',
  'grpc_response_status',
  'response_flags',
  'connection_security_policy',
  'route_name',
] as const;

export type RequestLabel = (typeof REQUEST_LABELS)[number];

/** Who this proxy is, for the side of the labels it knows. */
export interface Workload {
  readonly service: string;
  readonly workload: string;
  readonly namespace: string;
}

/** `reporter` label for a listener direction: source (outbound), destination (inbound), gateway. */
export function reporterOf(direction: TrafficDirection): 'source' | 'destination' | 'gateway' {
  if (direction === 'INBOUND') return 'destination';
  if (direction === 'GATEWAY') return 'gateway';
  return 'source';
}
