package org.apache.spark.scheduler.hearth;

import java.util.Locale;
import org.apache.spark.SparkContext;
import org.apache.spark.scheduler.ExternalClusterManager;
import org.apache.spark.scheduler.SchedulerBackend;
import org.apache.spark.scheduler.TaskScheduler;
import org.apache.spark.scheduler.TaskSchedulerImpl;

/**
 * Spark's hook for hearth: claims {@code spark+hearth://h:p,...} (what spark-submit accepts) and
 * {@code hearth://h:p,...} master URLs. Found through {@code java.util.ServiceLoader}
 * (META-INF/services) when this jar is on the driver's class path.
 */
public class HearthClusterManager implements ExternalClusterManager {
  static final String[] PREFIXES = {"spark+hearth://", "hearth://"};

  @Override
  public boolean canCreate(String masterURL) {
    if (masterURL == null) {
      return false;
    }
    String m = masterURL.trim().toLowerCase(Locale.ROOT);
    for (String p : PREFIXES) {
      if (m.startsWith(p)) {
        return true;
      }
    }
    return false;
  }

  @Override
  public TaskScheduler createTaskScheduler(SparkContext sc, String masterURL) {
    return new TaskSchedulerImpl(sc);
  }

  @Override
  public SchedulerBackend createSchedulerBackend(
      SparkContext sc, String masterURL, TaskScheduler scheduler) {
    return new HearthSchedulerBackend((TaskSchedulerImpl) scheduler, sc, masterURL);
  }

  @Override
  public void initialize(TaskScheduler scheduler, SchedulerBackend backend) {
    ((TaskSchedulerImpl) scheduler).initialize(backend);
  }
}
