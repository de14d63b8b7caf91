package medilake.hadoop;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.attribute.PosixFilePermission;
import java.util.EnumSet;
import java.util.Set;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.Path;
import org.apache.hadoop.fs.RawLocalFileSystem;
import org.apache.hadoop.fs.permission.FsPermission;

/**
 * Hadoop's raw local file system without its process spawns (MediLake Lab's local Spark sessions).
 *
 * <p>Without Hadoop's native library (pyspark ships none), RawLocalFileSystem starts a {@code chmod}
 * process for every file and directory it creates (twice per data file: the file and its
 * {@code .crc}) and a {@code readlink} process for every link status, which each Delta commit's
 * rename asks for. This subclass sets the same permission bits with java.nio and answers a
 * non-link's link status with its file status, which is what Hadoop's code returns for it. A
 * sticky bit, a file system without POSIX permissions and symbolic links keep Hadoop's own code.
 */
public class NioRawLocalFileSystem extends RawLocalFileSystem {
  @Override
  public void setPermission(Path p, FsPermission permission) throws IOException {
    if (permission.getStickyBit()) {  // java.nio cannot set it
      super.setPermission(p, permission);
      return;
    }
    try {
      Files.setPosixFilePermissions(pathToFile(p).toPath(), posix(permission.toShort()));
    } catch (UnsupportedOperationException notPosix) {  // e.g. Windows: Hadoop's winutils
      super.setPermission(p, permission);
    }
  }

  /** The nine rwx bits of a mode, e.g. 0644, as java.nio permissions. */
  static Set<PosixFilePermission> posix(int mode) {
    Set<PosixFilePermission> set = EnumSet.noneOf(PosixFilePermission.class);
    PosixFilePermission[] bits = PosixFilePermission.values();  // OWNER_READ … OTHERS_EXECUTE
    for (int i = 0; i < 9; i++) {
      if ((mode & (0400 >> i)) != 0) {
        set.add(bits[i]);
      }
    }
    return set;
  }

  @Override
  public FileStatus getFileLinkStatus(Path f) throws IOException {
    if (Files.isSymbolicLink(pathToFile(f).toPath())) {
      return super.getFileLinkStatus(f);
    }
    return getFileStatus(f);
  }
}
