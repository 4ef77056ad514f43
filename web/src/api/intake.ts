import { call } from './client';

export interface Location {
  lon: number;
  lat: number;
}

export interface NewRequest {
  text: string;
  grid_id?: string;
  address?: string;
  location?: Location;
  phone?: string;
}

export interface RequestFiled {
  tracking_no: string;
  request_id: string;
  status: string;
  url: string;
}

export interface HistoryEntry {
  status: string;
  at: string;
  words: string;
}

export interface RequestView {
  tracking_no: string;
  status: string;
  status_words: string;
  received_at: string;
  category: string | null;
  category_name: string | null;
  grid_name: string | null;
  text: string;
  /** What was done, as the worker who resolved it wrote it; null until resolved. */
  result: string | null;
  history: HistoryEntry[];
}

/** File a resident's request from the web form; the key makes a retried submission file once. */
export function fileRequest(request: NewRequest, idempotencyKey: string): Promise<RequestFiled> {
  const body: Record<string, unknown> = { channel: 'web', text: request.text };
  if (request.grid_id) body.grid_id = request.grid_id;
  if (request.address) body.address = request.address;
  if (request.location) body.location = request.location;
  if (request.phone) body.reporter = { phone: request.phone };
  return call<RequestFiled>('/api/v1/requests', {
    method: 'POST',
    body,
    headers: { 'Idempotency-Key': idempotencyKey },
    anonymous: true,
  });
}

export function trackRequest(trackingNo: string): Promise<RequestView> {
  return call<RequestView>(`/api/v1/requests/${encodeURIComponent(trackingNo)}`, { anonymous: true });
}
