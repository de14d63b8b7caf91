package medilake.hadoop;

import org.apache.hadoop.fs.LocalFileSystem;

/**
 * {@code fs.file.impl}: Hadoop's LocalFileSystem (checksummed: a {@code .crc} beside each file) over
 * {@link NioRawLocalFileSystem}. A LocalFileSystem still, so {@code FileSystem.getLocal} works.
 */
public class NioLocalFileSystem extends LocalFileSystem {
  public NioLocalFileSystem() {
    super(new NioRawLocalFileSystem());
  }
}
