//! Images as uploaded: decoded within limits, turned the right way up,
//! written again without their metadata (EXIF with its GPS position, XMP,
//! comments, anything after the image), and thumbnailed. Pure and
//! synchronous: the caller runs it on a blocking thread, a few at a time.

use image::codecs::gif::GifDecoder;
use image::codecs::jpeg::JpegEncoder;
use image::codecs::png::PngEncoder;
use image::codecs::webp::WebPEncoder;
use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, Limits};
use std::io::Cursor;

/// The longest side of a thumbnail, in pixels: twice the 240 px the page
/// shows at most, for sharp screens.
pub const THUMB_SIDE: u32 = 480;

/// Most bytes a decoder may hold at once (the pixels count), so that a
/// small file claiming a huge image cannot take the server's memory.
pub const MAX_DECODE_BYTES: u64 = 256 * 1024 * 1024;

/// Most pixels of all a GIF's frames together, each 1 byte as indexed.
const MAX_GIF_FRAME_PIXELS: u64 = 400_000_000;

/// An image ready to store.
#[derive(Debug)]
pub struct Processed {
    /// The image again, in its own format, without metadata.
    pub bytes: Vec<u8>,
    pub mime: &'static str,
    pub width: u32,
    pub height: u32,
    /// A small copy for the message list.
    pub thumb: Vec<u8>,
    pub thumb_mime: &'static str,
}

/// Why an image was refused; the text is meant for people.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ImageError {
    #[error("this image is {width} × {height} pixels; the most this server takes is {max} pixels")]
    TooManyPixels { width: u32, height: u32, max: u64 },
    #[error("this image is damaged or cut short, and cannot be read: {0}")]
    Unreadable(String),
    #[error("this image would take too much memory to read")]
    TooMuchMemory,
}

/// The image formats shown inline, as their content says.
pub fn format_of(head: &[u8]) -> Option<ImageFormat> {
    match image::guess_format(head).ok()? {
        f @ (ImageFormat::Png | ImageFormat::Jpeg | ImageFormat::Gif | ImageFormat::WebP) => {
            Some(f)
        }
        _ => None,
    }
}

/// The media type of one of [`format_of`]'s formats.
pub fn mime_of(format: ImageFormat) -> &'static str {
    match format {
        ImageFormat::Png => "image/png",
        ImageFormat::Jpeg => "image/jpeg",
        ImageFormat::Gif => "image/gif",
        _ => "image/webp",
    }
}

/// Decodes `bytes` (of `format`, from [`format_of`]) and writes it again
/// with a thumbnail, refusing images over `max_pixels`.
pub fn process(
    bytes: &[u8],
    format: ImageFormat,
    max_pixels: u64,
) -> Result<Processed, ImageError> {
    let image = decode(bytes, format, max_pixels)?;
    let (width, height) = (image.width(), image.height());
    let (out, mime) = match format {
        // A GIF keeps its frames: they are copied as they are (indexed
        // colours, no re-quantising), without the blocks around them.
        ImageFormat::Gif => (rewrite_gif(bytes, max_pixels)?, "image/gif"),
        _ => (encode(&image, format)?, mime_of(format)),
    };
    let small = if width > THUMB_SIDE || height > THUMB_SIDE {
        image.thumbnail(THUMB_SIDE, THUMB_SIDE)
    } else {
        image
    };
    let (thumb, thumb_mime) = if small.color().has_alpha() {
        (encode(&small, ImageFormat::Png)?, "image/png")
    } else {
        (encode(&small, ImageFormat::Jpeg)?, "image/jpeg")
    };
    Ok(Processed {
        bytes: out,
        mime,
        width,
        height,
        thumb,
        thumb_mime,
    })
}

fn limits() -> Limits {
    let mut limits = Limits::default();
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    limits
}

fn unreadable(e: image::ImageError) -> ImageError {
    match e {
        image::ImageError::Limits(_) => ImageError::TooMuchMemory,
        e => ImageError::Unreadable(e.to_string()),
    }
}

/// The first frame, the right way up.
fn decode(bytes: &[u8], format: ImageFormat, max_pixels: u64) -> Result<DynamicImage, ImageError> {
    // The header alone first: a 50,000 × 50,000 PNG of a few kilobytes is
    // told apart by its size, before any pixel is decoded.
    let mut probe = ImageReader::with_format(Cursor::new(bytes), format);
    probe.no_limits();
    let (width, height) = probe.into_dimensions().map_err(unreadable)?;
    if u64::from(width) * u64::from(height) > max_pixels {
        return Err(ImageError::TooManyPixels {
            width,
            height,
            max: max_pixels,
        });
    }
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    reader.limits(limits());
    let mut decoder = reader.into_decoder().map_err(unreadable)?;
    let orientation = decoder.orientation().map_err(unreadable)?;
    let mut image = DynamicImage::from_decoder(decoder).map_err(unreadable)?;
    // The EXIF orientation goes with the metadata: apply it to the pixels.
    image.apply_orientation(orientation);
    Ok(image)
}

/// `image` in `format`, from its pixels alone.
fn encode(image: &DynamicImage, format: ImageFormat) -> Result<Vec<u8>, ImageError> {
    let mut out = Vec::new();
    let written = match format {
        ImageFormat::Jpeg => DynamicImage::ImageRgb8(image.to_rgb8())
            .write_with_encoder(JpegEncoder::new_with_quality(&mut out, 88)),
        ImageFormat::WebP => DynamicImage::ImageRgba8(image.to_rgba8())
            .write_with_encoder(WebPEncoder::new_lossless(&mut out)),
        _ => image.write_with_encoder(PngEncoder::new(&mut out)),
    };
    written.map_err(|e| ImageError::Unreadable(e.to_string()))?;
    Ok(out)
}

/// A GIF's frames, copied into a new file: the logical screen, the global
/// palette, the loop count and each frame with its own palette, timing and
/// disposal; no comments, application or XMP blocks.
fn rewrite_gif(bytes: &[u8], max_pixels: u64) -> Result<Vec<u8>, ImageError> {
    // The image crate has checked the first frame; this checks the rest.
    let _ = GifDecoder::new(Cursor::new(bytes)).map_err(unreadable)?;
    let mut options = gif::DecodeOptions::new();
    options.set_color_output(gif::ColorOutput::Indexed);
    if let Some(limit) = std::num::NonZeroU64::new(MAX_DECODE_BYTES) {
        options.set_memory_limit(gif::MemoryLimit::Bytes(limit));
    }
    let bad = |e: gif::DecodingError| ImageError::Unreadable(e.to_string());
    let mut decoder = options.read_info(Cursor::new(bytes)).map_err(bad)?;
    let (width, height) = (decoder.width(), decoder.height());
    if u64::from(width) * u64::from(height) > max_pixels {
        return Err(ImageError::TooManyPixels {
            width: width.into(),
            height: height.into(),
            max: max_pixels,
        });
    }
    let palette = decoder.global_palette().unwrap_or(&[]).to_vec();
    let repeat = decoder.repeat();
    let mut out = Vec::new();
    let written = |e: gif::EncodingError| ImageError::Unreadable(e.to_string());
    let mut encoder = gif::Encoder::new(&mut out, width, height, &palette).map_err(written)?;
    encoder.set_repeat(repeat).map_err(written)?;
    let mut pixels: u64 = 0;
    while let Some(frame) = decoder.read_next_frame().map_err(bad)? {
        pixels += u64::from(frame.width) * u64::from(frame.height);
        if pixels > MAX_GIF_FRAME_PIXELS {
            return Err(ImageError::TooMuchMemory);
        }
        encoder.write_frame(frame).map_err(written)?;
    }
    drop(encoder);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{ImageBuffer, Rgb, Rgba};
    use proptest::prelude::*;

    fn png(w: u32, h: u32) -> Vec<u8> {
        let img = ImageBuffer::from_fn(w, h, |x, y| {
            Rgba([(x % 256) as u8, (y % 256) as u8, 7, 200])
        });
        let mut out = Vec::new();
        DynamicImage::ImageRgba8(img)
            .write_with_encoder(PngEncoder::new(&mut out))
            .unwrap();
        out
    }

    fn jpeg(w: u32, h: u32) -> Vec<u8> {
        let img = ImageBuffer::from_fn(w, h, |x, y| Rgb([(x % 256) as u8, (y % 256) as u8, 90]));
        let mut out = Vec::new();
        DynamicImage::ImageRgb8(img)
            .write_with_encoder(JpegEncoder::new_with_quality(&mut out, 90))
            .unwrap();
        out
    }

    fn gif(w: u16, h: u16, frames: u8) -> Vec<u8> {
        let mut out = Vec::new();
        {
            let palette = [0, 0, 0, 255, 255, 255, 255, 0, 0];
            let mut enc = gif::Encoder::new(&mut out, w, h, &palette).unwrap();
            enc.set_repeat(gif::Repeat::Infinite).unwrap();
            enc.write_extension(gif::ExtensionData::Repetitions(gif::Repeat::Infinite))
                .unwrap();
            enc.write_raw_extension(gif::Extension::Comment.into(), &[b"secret place"])
                .unwrap();
            for i in 0..frames {
                let frame = gif::Frame {
                    width: w,
                    height: h,
                    buffer: std::borrow::Cow::Owned(vec![i % 3; usize::from(w) * usize::from(h)]),
                    delay: 10,
                    ..Default::default()
                };
                enc.write_frame(&frame).unwrap();
            }
        }
        out
    }

    /// A JPEG with an EXIF block (APP1) saying "rotate 90°" and holding a
    /// GPS-like marker string, inserted after SOI.
    fn jpeg_with_exif(w: u32, h: u32) -> Vec<u8> {
        let plain = jpeg(w, h);
        // TIFF header (little endian), one IFD entry: Orientation (0x0112) = 6.
        let mut tiff = b"II*\0\x08\0\0\0\x01\0\x12\x01\x03\0\x01\0\0\0\x06\0\0\0\0\0\0\0".to_vec();
        tiff.extend_from_slice(b"GPS 48.8584N 2.2945E");
        let mut app1 = b"Exif\0\0".to_vec();
        app1.extend_from_slice(&tiff);
        let len = (app1.len() + 2) as u16;
        let mut out = vec![0xFF, 0xD8, 0xFF, 0xE1];
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&app1);
        out.extend_from_slice(&plain[2..]);
        out
    }

    fn contains(hay: &[u8], needle: &[u8]) -> bool {
        hay.windows(needle.len()).any(|w| w == needle)
    }

    #[test]
    fn a_png_is_written_again_with_a_thumbnail() {
        let mut bytes = png(1000, 500);
        // Something after the image's end, as in a polyglot file.
        bytes.extend_from_slice(b"<html><script>alert(1)</script></html>");
        let format = format_of(&bytes).unwrap();
        let p = process(&bytes, format, 40_000_000).unwrap();
        assert_eq!((p.width, p.height, p.mime), (1000, 500, "image/png"));
        assert!(!contains(&p.bytes, b"<script>"));
        let thumb = image::load_from_memory(&p.thumb).unwrap();
        assert_eq!((thumb.width(), thumb.height()), (480, 240));
        assert_eq!(p.thumb_mime, "image/png");
    }

    #[test]
    fn exif_is_dropped_and_its_orientation_applied() {
        let bytes = jpeg_with_exif(300, 100);
        assert!(contains(&bytes, b"GPS 48.8584N"));
        let p = process(&bytes, ImageFormat::Jpeg, 40_000_000).unwrap();
        assert!(!contains(&p.bytes, b"Exif"));
        assert!(!contains(&p.bytes, b"GPS 48.8584N"));
        // Orientation 6 turns 300 × 100 into 100 × 300.
        assert_eq!((p.width, p.height), (100, 300));
        assert_eq!(p.thumb_mime, "image/jpeg");
    }

    #[test]
    fn a_huge_image_is_refused_before_it_is_decoded() {
        // A JPEG whose frame header (SOF0, not checksummed) claims
        // 50,000 × 50,000 pixels.
        let mut bytes = jpeg(16, 16);
        let sof = bytes.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
        bytes[sof + 5..sof + 7].copy_from_slice(&50_000u16.to_be_bytes());
        bytes[sof + 7..sof + 9].copy_from_slice(&50_000u16.to_be_bytes());
        let got = process(&bytes, ImageFormat::Jpeg, 40_000_000);
        assert!(
            matches!(
                got,
                Err(ImageError::TooManyPixels {
                    width: 50_000,
                    height: 50_000,
                    ..
                })
            ),
            "{got:?}"
        );
    }

    #[test]
    fn a_truncated_image_is_refused() {
        let bytes = jpeg(64, 64);
        let cut = &bytes[..bytes.len() / 2];
        assert!(process(cut, ImageFormat::Jpeg, 40_000_000).is_err());
        let bytes = png(64, 64);
        assert!(process(&bytes[..bytes.len() - 30], ImageFormat::Png, 40_000_000).is_err());
    }

    #[test]
    fn a_gif_keeps_its_frames_and_loses_its_comment() {
        let bytes = gif(20, 10, 3);
        assert!(contains(&bytes, b"secret place"));
        let p = process(&bytes, ImageFormat::Gif, 40_000_000).unwrap();
        assert!(!contains(&p.bytes, b"secret place"));
        let frames = GifDecoder::new(Cursor::new(&p.bytes)).unwrap();
        use image::AnimationDecoder;
        assert_eq!(frames.into_frames().count(), 3);
        assert_eq!((p.width, p.height), (20, 10));
    }

    #[test]
    fn a_webp_is_written_again() {
        let mut src = Vec::new();
        DynamicImage::ImageRgba8(ImageBuffer::from_pixel(30, 20, Rgba([1, 2, 3, 255])))
            .write_with_encoder(WebPEncoder::new_lossless(&mut src))
            .unwrap();
        let p = process(&src, format_of(&src).unwrap(), 40_000_000).unwrap();
        assert_eq!((p.width, p.height, p.mime), (30, 20, "image/webp"));
    }

    /// A photo-like picture: smooth shapes with grain, so that the JPEG
    /// holds as much as a camera's does.
    fn photo(w: u32, h: u32) -> Vec<u8> {
        let mut seed = 0x2545_F491_u32;
        let img = ImageBuffer::from_fn(w, h, |x, y| {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            let grain = (seed % 24) as u8;
            let r = ((x * 255 / w) as u8).wrapping_add(grain);
            let g = (((x + y) % 512) / 2) as u8;
            let b = ((y * 255 / h) as u8).wrapping_sub(grain);
            Rgb([r, g, b])
        });
        let mut out = Vec::new();
        DynamicImage::ImageRgb8(img)
            .write_with_encoder(JpegEncoder::new_with_quality(&mut out, 90))
            .unwrap();
        out
    }

    /// Measures a 12-megapixel JPEG's way through the upload step
    /// (docs/PERFORMANCE.md, "Files"); with `CAUSERIE_BENCH_JPEG=PATH` it
    /// also writes the JPEG there for scripts/bench-files.sh:
    /// `cargo test --release --features ssr --lib files::image::tests::bench -- --ignored --nocapture`
    #[test]
    #[ignore]
    fn bench_12_megapixel_jpeg() {
        let bytes = photo(4000, 3000);
        if let Ok(path) = std::env::var("CAUSERIE_BENCH_JPEG") {
            std::fs::write(path, &bytes).unwrap();
        }
        let runs = 5;
        let mut times = Vec::new();
        for _ in 0..runs {
            let t = std::time::Instant::now();
            let p = process(&bytes, ImageFormat::Jpeg, 40_000_000).unwrap();
            times.push(t.elapsed());
            assert_eq!((p.width, p.height), (4000, 3000));
        }
        let t = std::time::Instant::now();
        let image = decode(&bytes, ImageFormat::Jpeg, 40_000_000).unwrap();
        let decoded = t.elapsed();
        let t = std::time::Instant::now();
        let small = image.thumbnail(THUMB_SIDE, THUMB_SIDE);
        let thumb = encode(&small, ImageFormat::Jpeg).unwrap();
        let thumbed = t.elapsed();
        let t = std::time::Instant::now();
        let again = encode(&image, ImageFormat::Jpeg).unwrap();
        let encoded = t.elapsed();
        times.sort();
        println!(
            "12 MP JPEG ({} bytes): the whole step (decode, write again, thumbnail) median {:?} \
             (min {:?}, max {:?}) of {runs}; decode {decoded:?}, thumbnail and its encoding \
             {thumbed:?} ({} bytes), the full image's encoding {encoded:?} ({} bytes)",
            bytes.len(),
            times[runs / 2],
            times[0],
            times[runs - 1],
            thumb.len(),
            again.len()
        );
    }

    fn seeds() -> Vec<(Vec<u8>, ImageFormat)> {
        let mut webp = Vec::new();
        DynamicImage::ImageRgba8(ImageBuffer::from_pixel(9, 7, Rgba([1, 2, 3, 255])))
            .write_with_encoder(WebPEncoder::new_lossless(&mut webp))
            .unwrap();
        vec![
            (png(12, 9), ImageFormat::Png),
            (jpeg(16, 8), ImageFormat::Jpeg),
            (gif(6, 5, 2), ImageFormat::Gif),
            (webp, ImageFormat::WebP),
        ]
    }

    proptest! {
        // The image path's fuzz: seeds of every format with bytes changed,
        // cut or added. Whatever comes in, the answer is an image within
        // the limits or an error, never a panic. scripts/fuzz.sh runs more.
        #[test]
        fn mutated_images_never_panic(
            which in 0usize..4,
            flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..8),
            cut in proptest::option::of(any::<prop::sample::Index>()),
            tail in proptest::collection::vec(any::<u8>(), 0..16),
        ) {
            let (mut bytes, format) = seeds().swap_remove(which);
            for (at, b) in flips {
                let i = at.index(bytes.len());
                bytes[i] = b;
            }
            if let Some(at) = cut {
                bytes.truncate(at.index(bytes.len()).max(1));
            }
            bytes.extend_from_slice(&tail);
            if let Ok(p) = process(&bytes, format, 1_000_000) {
                prop_assert!(u64::from(p.width) * u64::from(p.height) <= 1_000_000);
                prop_assert!(!p.thumb.is_empty());
            }
        }
    }
}
