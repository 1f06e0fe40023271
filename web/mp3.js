// MP3 frame headers (MPEG audio Layer III), as voicechat/pipeline/audio.py reads them: enough to cut a
// message into whole frames and to know how long each one plays. No decoding here.

const BITRATES = {
  mpeg1: [0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320],
  mpeg2: [0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160],
};
// Sample rates by version bits: 3 = MPEG-1, 2 = MPEG-2, 0 = MPEG-2.5.
const SAMPLE_RATES = { 3: [44100, 48000, 32000], 2: [22050, 24000, 16000], 0: [11025, 12000, 8000] };

/** The frame starting at `offset`, or null: {offset, length, sampleRate, samples}. */
export function parseFrameHeader(bytes, offset) {
  if (offset + 4 > bytes.length) return null;
  const b1 = bytes[offset + 1];
  const b2 = bytes[offset + 2];
  if (bytes[offset] !== 0xff || (b1 & 0xe0) !== 0xe0) return null;
  const version = (b1 >> 3) & 0x3;
  const layer = (b1 >> 1) & 0x3;
  const bitrateIndex = (b2 >> 4) & 0xf;
  const rateIndex = (b2 >> 2) & 0x3;
  if (version === 1 || layer !== 1 || bitrateIndex === 0 || bitrateIndex === 15 || rateIndex === 3) {
    return null; // reserved, not Layer III, or free format
  }
  const mpeg1 = version === 3;
  const sampleRate = SAMPLE_RATES[version][rateIndex];
  const bitrate = (mpeg1 ? BITRATES.mpeg1 : BITRATES.mpeg2)[bitrateIndex] * 1000;
  const padding = (b2 >> 1) & 0x1;
  const samples = mpeg1 ? 1152 : 576;
  const length = Math.floor(((samples / 8) * bitrate) / sampleRate) + padding;
  return { offset, length, sampleRate, samples };
}

/** The whole frames in `bytes`, resynchronising past anything that is not a frame. */
export function splitFrames(bytes) {
  const frames = [];
  let offset = 0;
  while (offset + 4 <= bytes.length) {
    const frame = parseFrameHeader(bytes, offset);
    if (frame === null || offset + frame.length > bytes.length) {
      offset += 1;
      continue;
    }
    frames.push({ ...frame, bytes: bytes.subarray(offset, offset + frame.length) });
    offset += frame.length;
  }
  return frames;
}

/** Playing time of the frames in `bytes`, in seconds. */
export function durationOf(bytes) {
  return splitFrames(bytes).reduce((sum, f) => sum + f.samples / f.sampleRate, 0);
}

export function concatBytes(parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

export function base64ToBytes(text) {
  const raw = atob(text);
  const bytes = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i += 1) bytes[i] = raw.charCodeAt(i);
  return bytes;
}
